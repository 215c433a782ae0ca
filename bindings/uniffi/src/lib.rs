//! UniFFI bindings of [`reauth`]: the one layer that Python, Kotlin and Swift share.
//!
//! One [`Coordinator`] object wraps the thread-safe [`reauth::SharedCoordinator`]. Every
//! input is a synchronous `&self` method that applies the input under the lock and
//! returns exactly the batch of [`Command`]s it produced — no callbacks into foreign code,
//! so no lock is ever held across a foreign call. The host carries the commands out in
//! order, re-arms its one timer from [`Coordinator::poll_timeout`] and calls
//! [`Coordinator::handle_timeout`] when it fires (`docs/contract.md` §6).
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

/// Why an input was refused. The input changed nothing. The message is the core's human
/// one and never contains token text.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum ReauthError {
    /// The request id was never issued, or its request already ended.
    #[error("unknown request {0}")]
    UnknownRequest(u64),
    /// The request is waiting for a refresh: nothing of it is in flight.
    #[error("request {0} is not awaiting a response")]
    NotInFlight(u64),
    /// The refresh attempt was never issued.
    #[error("unknown refresh attempt {0}")]
    UnknownAttempt(u64),
    /// An empty, whitespace-only, over-long or control-character token.
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    /// An HTTP status outside 100..=599.
    #[error("invalid http status {0} (must be in 100..=599)")]
    InvalidStatus(u16),
    /// A `now` past the end of the clock (`max_timestamp()`).
    #[error("time {0} is past the end of the clock (max_timestamp)")]
    InvalidTime(u64),
    /// A configuration value outside its documented range.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A route key of 0 (route keys are non-zero; use `route_key(name)`).
    #[error("invalid route key 0: route keys are non-zero (route_key(name) makes one)")]
    InvalidRoute,
    /// An earlier call panicked while holding the coordinator's lock (a bug): the
    /// coordinator refuses every further input.
    #[error("coordinator lock poisoned by a panic")]
    Poisoned,
}

impl From<InputError> for ReauthError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::UnknownRequest(id) => ReauthError::UnknownRequest(id.0),
            InputError::NotInFlight(id) => ReauthError::NotInFlight(id.0),
            InputError::UnknownAttempt(a) => ReauthError::UnknownAttempt(a.0),
            InputError::InvalidCredentials(c) => ReauthError::InvalidCredentials(c.to_string()),
            InputError::InvalidStatus(s) => ReauthError::InvalidStatus(s),
            InputError::InvalidTime(t) => ReauthError::InvalidTime(t),
            // `InputError` is non-exhaustive: a future kind keeps its own message.
            other => ReauthError::InvalidCredentials(other.to_string()),
        }
    }
}

impl From<SharedError> for ReauthError {
    fn from(e: SharedError) -> Self {
        match e {
            SharedError::Input(e) => e.into(),
            _ => ReauthError::Poisoned,
        }
    }
}

impl From<ConfigError> for ReauthError {
    fn from(e: ConfigError) -> Self {
        ReauthError::InvalidConfig(e.to_string())
    }
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
            ReauthError::InvalidRoute => "invalid_route",
            ReauthError::Poisoned => "poisoned",
        }
    }
}

/// A token. Its `Debug`/`Display` never show the text; [`expose`](Token::expose) does.
#[derive(uniffi::Object)]
#[uniffi::export(Debug, Display, Eq)]
pub struct Token(Secret);

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
    /// The token text, to put on the wire (`Authorization: Bearer …`) or in storage.
    pub fn expose(&self) -> String {
        self.0.expose().to_owned()
    }

    /// Its length in bytes.
    pub fn byte_len(&self) -> u64 {
        self.0.len() as u64
    }
}

fn token(secret: &Secret) -> Arc<Token> {
    Arc::new(Token(secret.clone()))
}

/// Credentials from the token endpoint or from storage. `Debug`/`Display` redact the
/// tokens.
#[derive(uniffi::Object)]
#[uniffi::export(Debug, Display)]
pub struct Credentials(CoreCredentials);

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
    /// `handle_refresh_succeeded`).
    #[uniffi::constructor(default(refresh_token = None, expires_in_ms = None))]
    pub fn new(
        access_token: String,
        refresh_token: Option<String>,
        expires_in_ms: Option<u64>,
    ) -> Arc<Self> {
        let mut c = CoreCredentials::new(access_token);
        if let Some(r) = refresh_token {
            c = c.with_refresh_token(r);
        }
        if let Some(e) = expires_in_ms {
            c = c.with_expires_in_ms(e);
        }
        Arc::new(Credentials(c))
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
    pub fn expires_in_ms(&self) -> Option<u64> {
        self.0.expires_in_ms
    }
}

/// The behaviour's settings (`docs/contract.md` §5). Every field has the contract's
/// default; `refresh_statuses = None` means `[401]`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Config {
    /// Statuses that mean "the access token was refused" (None: `[401]`; `[]`: none).
    #[uniffi(default = None)]
    pub refresh_statuses: Option<Vec<u16>>,
    /// Refresh this long before the access token expires (at most half its lifetime).
    #[uniffi(default = 30000)]
    pub expiry_skew_ms: u64,
    /// An expiry refresh of a token younger than this counts in the refresh window.
    #[uniffi(default = 500)]
    pub min_token_age_ms: u64,
    /// Replays per request after a refresh.
    #[uniffi(default = 1)]
    pub max_replays_per_request: u32,
    /// Refresh cycles that look like a loop allowed per window, then `Logout`.
    #[uniffi(default = 5)]
    pub refresh_window_max_refreshes: u32,
    /// The refresh window's length.
    #[uniffi(default = 30000)]
    pub refresh_window_ms: u64,
    /// First backoff after a transient refresh failure.
    #[uniffi(default = 500)]
    pub initial_backoff_ms: u64,
    /// Largest backoff (also caps `Retry-After`).
    #[uniffi(default = 30000)]
    pub max_backoff_ms: u64,
    /// Transient failures retried per cycle before giving up (no logout).
    #[uniffi(default = 3)]
    pub max_retries: u32,
    /// An unanswered refresh attempt counts as transient after this long.
    #[uniffi(default = 30000)]
    pub refresh_timeout_ms: u64,
    /// Requests that may wait for a refresh; more fail `QueueFull`.
    #[uniffi(default = 1024)]
    pub max_pending: u32,
    /// How long a request may wait for a refresh before `WaitTimeout`.
    #[uniffi(default = 60000)]
    pub max_wait_ms: u64,
}

impl Config {
    fn to_core(&self) -> reauth::Config {
        let mut c = reauth::Config::default()
            .with_expiry_skew_ms(self.expiry_skew_ms)
            .with_min_token_age_ms(self.min_token_age_ms)
            .with_max_replays_per_request(self.max_replays_per_request)
            .with_refresh_window(RefreshWindow::new(
                self.refresh_window_max_refreshes,
                self.refresh_window_ms,
            ))
            .with_initial_backoff_ms(self.initial_backoff_ms)
            .with_max_backoff_ms(self.max_backoff_ms)
            .with_max_retries(self.max_retries)
            .with_refresh_timeout_ms(self.refresh_timeout_ms)
            .with_max_pending(self.max_pending)
            .with_max_wait_ms(self.max_wait_ms);
        if let Some(statuses) = &self.refresh_statuses {
            c = c.with_refresh_statuses(statuses.clone());
        }
        c
    }

    fn from_core(c: &reauth::Config) -> Self {
        Config {
            refresh_statuses: Some(c.refresh_statuses.clone()),
            expiry_skew_ms: c.expiry_skew_ms,
            min_token_age_ms: c.min_token_age_ms,
            max_replays_per_request: c.max_replays_per_request,
            refresh_window_max_refreshes: c.refresh_window.max_refreshes,
            refresh_window_ms: c.refresh_window.window_ms,
            initial_backoff_ms: c.initial_backoff_ms,
            max_backoff_ms: c.max_backoff_ms,
            max_retries: c.max_retries,
            refresh_timeout_ms: c.refresh_timeout_ms,
            max_pending: c.max_pending,
            max_wait_ms: c.max_wait_ms,
        }
    }
}

/// The contract's default configuration, as the core defines it (the foreign `Config()`
/// defaults are the same values; a test checks it).
#[uniffi::export]
pub fn default_config() -> Config {
    Config::from_core(&reauth::Config::default())
}

/// The largest `now` an input may carry (2^53 − 1 ms).
#[uniffi::export]
pub fn max_timestamp() -> u64 {
    reauth::MAX_TIMESTAMP
}

/// A route key for a route template such as `"GET /users/{id}"` (stable FNV-1a hash,
/// never 0): pass it in [`RequestOptions::route`] so that an endpoint refusing a fresh
/// token costs one refresh per token, not one per request (rule 7.20).
#[uniffi::export]
pub fn route_key(name: String) -> u32 {
    RouteKey::from_name(&name).get()
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
    pub route: Option<u32>,
}

impl RequestOptions {
    fn to_core(&self) -> Result<CoreOptions, ReauthError> {
        let mut o = CoreOptions::default()
            .with_replayable(self.replayable)
            .with_refresh(self.refresh);
        if let Some(route) = self.route {
            o = o.with_route(RouteKey::new(route).ok_or(ReauthError::InvalidRoute)?);
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
            _ => FailReason::Transport,
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
            _ => LogoutReason::ExcessiveRefresh,
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
        retry_after_ms: Option<u64>,
    },
}

/// Something the host must do, in the order given (`docs/contract.md` §6).
#[derive(Debug, uniffi::Enum)]
pub enum Command {
    /// Transmit request `id` for the first time with `access_token`.
    Send {
        /// The request.
        id: u64,
        /// `Authorization: Bearer <access_token.expose()>`.
        access_token: Arc<Token>,
        /// Its generation (for diagnostics).
        generation: u64,
    },
    /// Transmit request `id` again with the new `access_token`.
    Replay {
        /// The request.
        id: u64,
        /// The token to send it with.
        access_token: Arc<Token>,
        /// Its generation.
        generation: u64,
    },
    /// Call the token endpoint with `refresh_token`; report the result with `attempt`.
    Refresh {
        /// The attempt to report with.
        attempt: u64,
        /// The refresh token to send.
        refresh_token: Arc<Token>,
    },
    /// Persist these credentials (the refresh token may have rotated).
    StoreCredentials {
        /// The generation of the access token.
        generation: u64,
        /// The new access token.
        access_token: Arc<Token>,
        /// The refresh token now in use, if the session has one.
        refresh_token: Option<Arc<Token>>,
        /// The lifetime the server stated; do not persist it (see `expires_at`).
        expires_in_ms: Option<u64>,
        /// When the access token expires on the clock of `now`: persist
        /// `wall_clock_now + (expires_at - now)` (`docs/contract.md` §12.1).
        expires_at: Option<u64>,
    },
    /// Request `id` is done: hand the caller its last response.
    Complete {
        /// The request.
        id: u64,
    },
    /// Request `id` failed.
    Fail {
        /// The request.
        id: u64,
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
                id: id.0,
                access_token: Arc::new(Token(access_token)),
                generation: generation.0,
            },
            C::Replay {
                id,
                access_token,
                generation,
            } => Command::Replay {
                id: id.0,
                access_token: Arc::new(Token(access_token)),
                generation: generation.0,
            },
            C::Refresh {
                attempt,
                refresh_token,
            } => Command::Refresh {
                attempt: attempt.0,
                refresh_token: Arc::new(Token(refresh_token)),
            },
            C::StoreCredentials {
                credentials,
                generation,
                expires_at,
            } => Command::StoreCredentials {
                generation: generation.0,
                access_token: token(&credentials.access_token),
                refresh_token: credentials.refresh_token.as_ref().map(token),
                expires_in_ms: credentials.expires_in_ms,
                expires_at,
            },
            C::Complete { id } => Command::Complete { id: id.0 },
            C::Fail { id, reason } => Command::Fail {
                id: id.0,
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
    pub id: u64,
    /// `Send` at once, nothing (it waits), or `Fail`.
    pub commands: Vec<Command>,
}

/// Counts of failed requests by reason.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
#[allow(missing_docs)] // one counter per `FailReason`, documented there
pub struct FailCounts {
    pub not_logged_in: u64,
    pub logged_out: u64,
    pub refresh_rejected: u64,
    pub refresh_unavailable: u64,
    pub excessive_refresh: u64,
    pub unauthorized: u64,
    pub queue_full: u64,
    pub wait_timeout: u64,
    pub transport: u64,
}

/// Counters since the coordinator was created.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
#[allow(missing_docs)] // the fields mirror `reauth::Stats`, documented there
pub struct Stats {
    pub submitted: u64,
    pub sent: u64,
    pub replayed: u64,
    pub completed: u64,
    pub failed: FailCounts,
    pub cancelled: u64,
    pub unauthorized_responses: u64,
    pub refresh_cycles: u64,
    pub refresh_attempts: u64,
    pub refresh_succeeded: u64,
    pub refresh_rejected: u64,
    pub refresh_transient: u64,
    pub refresh_timeouts: u64,
    pub refresh_results_ignored: u64,
    pub logouts: u64,
}

impl From<reauth::Stats> for Stats {
    fn from(s: reauth::Stats) -> Self {
        let f = s.failed;
        Stats {
            submitted: s.submitted,
            sent: s.sent,
            replayed: s.replayed,
            completed: s.completed,
            failed: FailCounts {
                not_logged_in: f.not_logged_in,
                logged_out: f.logged_out,
                refresh_rejected: f.refresh_rejected,
                refresh_unavailable: f.refresh_unavailable,
                excessive_refresh: f.excessive_refresh,
                unauthorized: f.unauthorized,
                queue_full: f.queue_full,
                wait_timeout: f.wait_timeout,
                transport: f.transport,
            },
            cancelled: s.cancelled,
            unauthorized_responses: s.unauthorized_responses,
            refresh_cycles: s.refresh_cycles,
            refresh_attempts: s.refresh_attempts,
            refresh_succeeded: s.refresh_succeeded,
            refresh_rejected: s.refresh_rejected,
            refresh_transient: s.refresh_transient,
            refresh_timeouts: s.refresh_timeouts,
            refresh_results_ignored: s.refresh_results_ignored,
            logouts: s.logouts,
        }
    }
}

/// The token-refresh coordinator, safe to call from any thread. Each input returns the
/// commands it produced; carry them out in order, then re-arm the one timer from
/// [`poll_timeout`](Self::poll_timeout) (`docs/contract.md` §6).
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
            inner: SharedCoordinator::new(config.to_core())?,
        }))
    }

    /// Starts a session (or replaces its credentials from outside). Emits no
    /// `StoreCredentials`: the host already holds these.
    pub fn login(&self, now: u64, credentials: Arc<Credentials>) -> Batch {
        batch(self.inner.login(now, credentials.0.clone()))
    }

    /// A request wants to go out: its id and `Send`, nothing (it waits) or `Fail`.
    #[uniffi::method(default(options))]
    pub fn submit(&self, now: u64, options: RequestOptions) -> Result<Submitted, ReauthError> {
        let options = options.to_core()?;
        let (id, commands) = self.inner.submit(now, options)?;
        Ok(Submitted {
            id: id.0,
            commands: commands.into_iter().map(Command::from).collect(),
        })
    }

    /// The HTTP status of the last `Send`/`Replay` of `id`.
    pub fn handle_response(&self, now: u64, id: u64, status: u16) -> Batch {
        batch(self.inner.handle_response(now, RequestId(id), status))
    }

    /// The last `Send`/`Replay` of `id` failed without a status (rule 7.17).
    pub fn handle_transport_error(&self, now: u64, id: u64) -> Batch {
        batch(self.inner.handle_transport_error(now, RequestId(id)))
    }

    /// Refresh `attempt` returned credentials.
    pub fn handle_refresh_succeeded(
        &self,
        now: u64,
        attempt: u64,
        credentials: Arc<Credentials>,
    ) -> Batch {
        batch(
            self.inner
                .handle_refresh_succeeded(now, AttemptId(attempt), credentials.0.clone()),
        )
    }

    /// Refresh `attempt` failed.
    pub fn handle_refresh_failed(&self, now: u64, attempt: u64, failure: RefreshFailure) -> Batch {
        let failure = match failure {
            RefreshFailure::Rejected => reauth::RefreshFailure::Rejected,
            RefreshFailure::Transient { retry_after_ms } => {
                reauth::RefreshFailure::Transient { retry_after_ms }
            }
        };
        batch(
            self.inner
                .handle_refresh_failed(now, AttemptId(attempt), failure),
        )
    }

    /// The timer armed from `poll_timeout` fired (early or repeated calls are harmless).
    pub fn handle_timeout(&self, now: u64) -> Batch {
        batch(self.inner.handle_timeout(now))
    }

    /// The caller no longer wants `id`.
    pub fn cancel(&self, now: u64, id: u64) -> Batch {
        batch(self.inner.cancel(now, RequestId(id)))
    }

    /// The host knows the token is bad: the next request waits for a refresh.
    pub fn force_refresh(&self, now: u64) -> Batch {
        batch(self.inner.force_refresh(now))
    }

    /// The user logs out: waiting requests fail, then `Logout { Requested }`.
    pub fn logout(&self, now: u64) -> Batch {
        batch(self.inner.logout(now))
    }

    /// Stored credentials are being read: requests wait for them (rule 7.18).
    pub fn begin_restore(&self, now: u64) -> Batch {
        batch(self.inner.begin_restore(now))
    }

    /// Nothing was stored: the requests that waited fail `NotLoggedIn`.
    pub fn restore_failed(&self, now: u64) -> Batch {
        batch(self.inner.restore_failed(now))
    }

    /// When to call `handle_timeout` next, or None.
    pub fn poll_timeout(&self) -> Result<Option<u64>, ReauthError> {
        Ok(self.inner.poll_timeout()?)
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
    pub fn generation(&self) -> Result<Option<u64>, ReauthError> {
        self.read(|c| c.generation().map(|g| g.0))
    }

    /// Requests the core knows: waiting or awaiting a response.
    pub fn open_requests(&self) -> Result<u64, ReauthError> {
        self.read(|c| c.open_requests() as u64)
    }

    /// Whether request `id` awaits a response (it went out and nothing was reported).
    pub fn is_in_flight(&self, id: u64) -> Result<bool, ReauthError> {
        self.read(|c| c.is_in_flight(RequestId(id)))
    }

    /// Requests waiting for a refresh (or for stored credentials).
    pub fn waiting(&self) -> Result<u64, ReauthError> {
        self.read(|c| c.waiting() as u64)
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
        // `Config()` in a foreign language takes the `#[uniffi(default)]` values; with
        // `refresh_statuses = None` they must build the core's default config.
        let foreign = Config {
            refresh_statuses: None,
            ..default_config()
        };
        assert_eq!(foreign.to_core(), reauth::Config::default());
        assert_eq!(default_config().refresh_statuses, Some(vec![401]));
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
        let e = core
            .handle_timeout(reauth::MAX_TIMESTAMP + 1)
            .expect_err("time");
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
    }

    #[test]
    fn commands_and_credentials_never_show_token_text() {
        let core = Coordinator::new(default_config()).expect("valid");
        let credentials =
            Credentials::new("at-SECRET".into(), Some("rt-SECRET".into()), Some(60_000));
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
