//! Token refresh done right for [reqwest]: a [`reqwest_middleware`] middleware over the
//! [reauth] coordinator. Every request waits for its command, goes out with
//! `Authorization: Bearer …`, and on a 401 waits for the **one** refresh and is replayed
//! with the new token; a refused refresh fails the waiting requests and logs out once; a
//! network problem on the token endpoint never logs out. The behaviour is specified rule
//! by rule in the repository's `docs/contract.md`.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use reauth_reqwest::{Credentials, Reauth};
//!
//! let reauth = Reauth::builder("https://auth.example.com/oauth/token", "my-app")
//!     .credentials(Credentials::new("access").with_refresh_token("refresh"))
//!     .build()?;
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(reauth.clone())
//!     .build();
//! let response = client.get("https://api.example.com/me").send().await?;
//! # let _ = response;
//! # Ok(()) }
//! ```
//!
//! The crate's README (also the repository README's Rust section) has the version with a
//! file store; both compile as doctests.
//!
//! - **The refresh** runs on its own `reqwest::Client` (never through the middleware
//!   stack) in a spawned task. Token-endpoint answers are read as RFC 6749 §5.2 says:
//!   400/401 with an OAuth `error` → rejected (the session ends); 5xx, 429, timeouts,
//!   connection errors and malformed bodies → transient, with the server's `Retry-After`
//!   (seconds or an HTTP-date). A malformed body is logged with its reason, never
//!   dropped silently.
//! - **Cancel-safe:** dropping the future of a request cancels it in the coordinator.
//! - A request whose body cannot be cloned (`try_clone() == None`, a stream) is sent at
//!   most once: a 401 hands it its response.
//! - A failed request returns [`reqwest_middleware::Error::Middleware`] wrapping
//!   [`RequestFailed`] (its [`FailReason`]), except `Unauthorized`, which returns the
//!   401/403 response itself, and transport errors, which are returned as reqwest gave
//!   them.
//! - **Stores:** [`MemoryStore`] (default) or [`FileStore`] for apps with several
//!   processes: on a refresh the store is read first under its lock and a sibling's
//!   rotation adopted instead of calling the server; a rejection re-reads it once
//!   (contract §12.2). Expiries are stored as wall-clock time (§12.1).
//! - Tokens are held only in [`Secret`]s (wiped on drop, redacted in `Debug`);
//!   [`tracing`] events never contain token text.
//! - Needs a tokio runtime: [`Builder::build`] spawns the timer task.
//! - **A flight recorder** keeps the coordinator's last inputs (64 by default,
//!   [`Builder::flight_recorder`]) with the rule behind each command and no token text:
//!   the logout hook gets it ([`LoggedOut::explain`] answers "why was I logged out?",
//!   [`LoggedOut::transcript_json`] replays the incident anywhere), and a session that
//!   ends for any reason but the app's own logout writes it to [`tracing`] at debug
//!   level.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use http::Extensions;
use http::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use reauth::{AttemptId, ConfigError, Generation, RefreshFailure, RequestId};
pub use reauth::{
    Config, Credentials, FailReason, LogoutReason, RequestOptions, RouteKey, Secret, Stats,
};
pub use reauth_host::{ClientAuth, DriverError};
use reauth_host::{
    Driver, MAX_TOKEN_RESPONSE_BYTES, Own, Problem, RefreshPlan, Step, TokenAnswer, TokenEndpoint,
    Wake, after_rejection, default_route, keep_rotation, plan_refresh, read_token_response,
};
use reqwest_middleware::{Middleware, Next};
use tokio::sync::{Notify, oneshot};
use zeroize::Zeroizing;

#[cfg(any(feature = "postgres", feature = "redis"))]
pub mod shared;
mod store;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "postgres")]
pub use shared::{PostgresStore, PostgresStores};
#[cfg(feature = "redis")]
pub use shared::{RedisStore, RedisStores};
pub use store::{CredentialStore, FileStore, MemoryStore, StoredCredentials};

/// Why building a [`Reauth`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid reauth config: {0}")]
    Config(#[from] ConfigError),
    /// The stored or given credentials were refused (empty, whitespace, too long).
    #[error("invalid credentials: {0}")]
    Credentials(#[from] DriverError),
    /// The store could not be read.
    #[error("credential store: {0}")]
    Store(#[from] std::io::Error),
    /// `build` was called outside a tokio runtime.
    #[error("reauth-reqwest needs a tokio runtime (build it inside one)")]
    NoRuntime,
}

/// The request was not sent, or its wait ended, because [`Reauth::close`] was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("reauth is closed: the request was not sent")]
pub struct Closed;

/// The coordinator failed a request; `reason` says why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("request failed: {reason}")]
pub struct RequestFailed {
    /// Why.
    pub reason: FailReason,
}

type LogoutHook = Arc<dyn Fn(&LoggedOut) + Send + Sync>;

/// The flight recorder's default capacity: the last 64 inputs (at least; fewer than 128).
pub const DEFAULT_FLIGHT_RECORDER: usize = 64;

/// What the logout hook gets: why the session ended, and the flight recording that
/// shows how (empty when the recorder is off). `Display` prints the reason.
#[derive(Clone, Debug)]
pub struct LoggedOut {
    /// Why the session ended.
    pub reason: LogoutReason,
    /// The coordinator's last inputs, commands and causes, tokens replaced.
    pub trace: reauth::trace::Trace,
    config: Config,
}

impl LoggedOut {
    /// The recording as a timeline: each input, each command and the contract rule that
    /// produced it, then why the session ended.
    pub fn explain(&self) -> String {
        self.trace.explain(&self.config)
    }

    /// The recording as a transcript (`tests/vectors` format): it replays the incident
    /// exactly in every reauth replayer, and `explain` reads it.
    pub fn transcript_json(&self) -> String {
        serde_json::to_string(&self.trace.transcript(&self.config)).unwrap_or_default()
    }
}

impl std::fmt::Display for LoggedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.reason, f)
    }
}

/// Configures a [`Reauth`]. See the crate documentation for an example.
pub struct Builder {
    token_url: String,
    client_id: String,
    client_secret: Option<Secret>,
    client_auth: ClientAuth,
    credentials: Option<Credentials>,
    store: Arc<dyn CredentialStore>,
    config: Config,
    on_logout: Option<LogoutHook>,
    token_client: Option<reqwest::Client>,
    flight_recorder: usize,
}

impl Builder {
    /// The client secret, for confidential clients (sent in the form body unless
    /// [`client_auth`](Self::client_auth) says Basic).
    pub fn client_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// How the client authenticates to the token endpoint (RFC 6749 §2.3.1; default: in
    /// the form body).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// Starts the session with these credentials (written to the store once the
    /// coordinator accepted them: invalid credentials fail `build` and store nothing).
    /// Without them, the session is restored from the store, if it holds any.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Where credentials are kept (default: [`MemoryStore`]).
    pub fn store(mut self, store: impl CredentialStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// The coordinator's configuration (default: the contract's).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Called once per session end, after the store is cleared, with the reason and the
    /// flight recording. It must not block.
    pub fn on_logout(mut self, hook: impl Fn(&LoggedOut) + Send + Sync + 'static) -> Self {
        self.on_logout = Some(Arc::new(hook));
        self
    }

    /// How many of the coordinator's last inputs the flight recorder keeps (at least
    /// that many, fewer than twice as many; default [`DEFAULT_FLIGHT_RECORDER`]); 0 turns
    /// it off.
    pub fn flight_recorder(mut self, capacity: usize) -> Self {
        self.flight_recorder = capacity;
        self
    }

    /// The client the token endpoint is called with (default: a new one with a 30 s
    /// timeout). Never the authenticated one.
    pub fn token_client(mut self, client: reqwest::Client) -> Self {
        self.token_client = Some(client);
        self
    }

    /// Starts the timer task on the current tokio runtime and logs in (from the given
    /// credentials or the store).
    pub fn build(self) -> Result<Reauth, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let token_client = match self.token_client {
            Some(c) => c,
            None => reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                // A redirect would carry the refresh token to another URL (a 307/308
                // keeps the POST body): a token endpoint answers, it does not redirect.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(std::io::Error::other)?,
        };
        let deadline = Duration::from_millis(self.config.refresh_timeout_ms);
        if let Some(ttl) = self.store.lock_ttl()
            && ttl <= deadline
        {
            // A lock that expires while its holder still waits for the token endpoint
            // lets a sibling present the same refresh token.
            return Err(Error::Store(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the store's lock_ttl ({ttl:?}) must exceed the refresh deadline (Config::refresh_timeout_ms = {deadline:?})"
                ),
            )));
        }
        let config = self.config.clone();
        let driver = Driver::new(self.config)?;
        driver.record(self.flight_recorder)?;
        let mut token =
            TokenEndpoint::new(self.token_url, self.client_id).with_auth(self.client_auth);
        if let Some(secret) = self.client_secret {
            token = token.with_client_secret(secret);
        }
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            driver,
            epoch: Instant::now(),
            mailbox: Mutex::new(Mailbox::default()),
            bearer: Mutex::new(None),
            endpoint: Endpoint {
                http: token_client,
                token,
                deadline,
            },
            store: self.store,
            on_logout: self.on_logout,
            timer: Arc::new(Notify::new()),
            config,
        });
        match self.credentials {
            Some(c) => inner.login(c)?,
            None => {
                if let Some(stored) = inner.store.load()? {
                    let credentials = stored.to_credentials(SystemTime::now());
                    let step = inner.driver.login(inner.now(), credentials)?;
                    inner.carry(step);
                }
            }
        }
        runtime.spawn(timer(Arc::downgrade(&inner)));
        Ok(Reauth { inner })
    }
}

/// The middleware: add it with `ClientBuilder::with(reauth.clone())`. Cheap to clone;
/// all clones share one coordinator.
#[derive(Clone)]
pub struct Reauth {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Reauth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reauth")
            .field("token_url", &self.inner.endpoint.token.url())
            .field("client_id", &self.inner.endpoint.token.client_id())
            .finish_non_exhaustive()
    }
}

impl Reauth {
    /// A builder for the token endpoint at `token_url`, as client `client_id`.
    pub fn builder(token_url: impl Into<String>, client_id: impl Into<String>) -> Builder {
        Builder {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: None,
            client_auth: ClientAuth::Body,
            credentials: None,
            store: Arc::new(MemoryStore::new()),
            config: Config::default(),
            on_logout: None,
            token_client: None,
            flight_recorder: DEFAULT_FLIGHT_RECORDER,
        }
    }

    /// Starts (or replaces) the session with credentials the app obtained. They are
    /// stored once the coordinator accepted them: refused credentials change nothing, in
    /// the session or in the store.
    pub fn login(&self, credentials: Credentials) -> Result<(), DriverError> {
        self.inner.login(credentials)
    }

    /// Ends the middleware's service: every request waiting for a command (for a refresh,
    /// say) fails at once with [`Closed`], and every later request fails with it without
    /// being sent. A request already on the wire fails with [`Closed`] when its response
    /// arrives (the response is dropped), as in every adapter. The session and the store
    /// are kept (this is not a logout). Idempotent.
    pub fn close(&self) {
        if let Ok(step) = self.inner.driver.close(self.inner.now()) {
            self.inner.carry(step);
        }
    }

    /// Ends the session: waiting requests fail `LoggedOut`, the store is cleared and
    /// `on_logout(Requested)` runs.
    pub fn logout(&self) {
        if let Ok(step) = self.inner.driver.logout(self.inner.now()) {
            self.inner.carry(step);
        }
    }

    /// The app knows the token is bad (a push said so): the next request refreshes.
    pub fn force_refresh(&self) {
        if let Ok(step) = self.inner.driver.force_refresh(self.inner.now()) {
            self.inner.carry(step);
        }
    }

    /// The coordinator's counters.
    pub fn stats(&self) -> Stats {
        self.inner
            .driver
            .with(|core| *core.stats())
            .unwrap_or_default()
    }

    /// What the flight recorder holds now (empty when it is off).
    pub fn trace(&self) -> reauth::trace::Trace {
        self.inner.driver.trace().unwrap_or_default()
    }

    /// Whether a session exists.
    pub fn is_logged_in(&self) -> bool {
        self.inner
            .driver
            .with(reauth::Coordinator::is_logged_in)
            .unwrap_or(false)
    }
}

/// Requests told to wait, and wakes that came before their request registered (ids are
/// never reused). Its lock is held for a map operation only.
#[derive(Default)]
struct Mailbox {
    waiting: HashMap<RequestId, oneshot::Sender<Wake>>,
    early: HashMap<RequestId, Wake>,
    /// The last requests abandoned: a wake made before the abandon but carried out after
    /// it is dropped instead of kept in `early` for nobody (bounded: such a wake is
    /// carried out moments later).
    abandoned: std::collections::VecDeque<RequestId>,
}

/// How many abandoned ids the mailbox remembers.
const ABANDONED_KEPT: usize = 256;

struct Inner {
    me: Weak<Inner>,
    /// The coordinator and the routing of its commands (`reauth-host`): one short lock
    /// per input, never held across I/O, an await or a callback.
    driver: Driver,
    epoch: Instant,
    mailbox: Mutex<Mailbox>,
    /// The `Authorization` value of the newest generation sent.
    bearer: Mutex<Option<(Generation, HeaderValue)>>,
    endpoint: Endpoint,
    store: Arc<dyn CredentialStore>,
    on_logout: Option<LogoutHook>,
    timer: Arc<Notify>,
    /// The coordinator's configuration (to explain a recording).
    config: Config,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Carries out a step — the logout (store cleared, then the hook), wakes, refreshes,
    /// the timer — and returns the own command of the request it was about.
    fn carry(&self, step: Step) -> Own {
        if step.is_own_only() {
            return step.own;
        }
        // The logout first: a request that sees its failure finds the store cleared and
        // the app told.
        if let Some(reason) = step.logout {
            if let Err(e) = self.store.clear() {
                tracing::error!(error = %e, "reauth: could not clear the credential store");
            }
            tracing::info!(reason = reason.as_str(), "reauth: logged out");
            let ended = LoggedOut {
                reason,
                trace: self.driver.trace().unwrap_or_default(),
                config: self.config.clone(),
            };
            if reason != LogoutReason::Requested && !ended.trace.steps.is_empty() {
                tracing::debug!(
                    reason = reason.as_str(),
                    transcript = %ended.transcript_json(),
                    "reauth: the session ended; its flight recording (explain it with reauth's explain tool)"
                );
            }
            if let Some(hook) = &self.on_logout {
                // A panicking hook must not cost the wakes below (those requests ended).
                let called =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&ended)));
                if called.is_err() {
                    tracing::error!("reauth: the on_logout hook panicked");
                }
            }
        }
        for (id, wake) in step.wakes {
            let mut mailbox = lock(&self.mailbox);
            match mailbox.waiting.remove(&id) {
                Some(waiter) => {
                    drop(mailbox);
                    let _ = waiter.send(wake);
                }
                // Its caller gave up after this wake was made: nobody will take it.
                None if mailbox.abandoned.contains(&id) => {}
                None => {
                    mailbox.early.insert(id, wake);
                }
            }
        }
        for (attempt, refresh_token) in step.refreshes {
            if let Some(this) = self.me.upgrade() {
                tokio::spawn(refresh(this, attempt, refresh_token));
            }
        }
        if step.deadline_changed {
            self.timer.notify_one();
        }
        step.own
    }

    /// The `Authorization` value for the token of `generation`, made once per generation
    /// (a clone of it shares its bytes): no allocation per request.
    fn bearer(
        &self,
        generation: Generation,
        token: &Secret,
    ) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
        let mut cached = lock(&self.bearer);
        if let Some((g, value)) = &*cached
            && *g == generation
        {
            return Ok(value.clone());
        }
        let text = Zeroizing::new(format!("Bearer {}", token.expose()));
        let mut value = HeaderValue::from_str(&text)?;
        value.set_sensitive(true);
        *cached = Some((generation, value.clone()));
        Ok(value)
    }

    /// The wake of a request told to wait (it may have come already).
    async fn wait(&self, id: RequestId) -> Wake {
        let rx = {
            let mut mailbox = lock(&self.mailbox);
            if let Some(wake) = mailbox.early.remove(&id) {
                return wake;
            }
            let (tx, rx) = oneshot::channel();
            mailbox.waiting.insert(id, tx);
            rx
        };
        // The sender is dropped only with the mailbox entry (abandon): never while we
        // wait. Said, not assumed: a dropped sender reads as closed.
        rx.await.unwrap_or(Wake::Closed)
    }

    /// Saves `stored` (`what` names it in the log line if the store fails).
    fn write(&self, stored: &StoredCredentials, what: &str) {
        if let Err(e) = self.store.save(stored) {
            tracing::error!(error = %e, "reauth: could not store {what}");
        }
    }

    fn save(&self, credentials: &Credentials) {
        let stored = StoredCredentials::from_login(credentials, SystemTime::now());
        self.write(&stored, "the credentials");
    }

    /// Logs in, then stores the credentials — only if the core accepted them — both under
    /// the store's lock: a refresh of the new session takes that lock first, so it never
    /// reads the store before the new credentials are in it (it would take the old ones
    /// for a sibling's rotation, §12.2).
    fn login(&self, credentials: Credentials) -> Result<(), DriverError> {
        let guard = self.store.lock().map_err(|e| {
            tracing::error!(error = %e, "reauth: could not lock the credential store; logging in without storing the credentials");
        });
        let step = self.driver.login(self.now(), credentials.clone())?;
        // Only under the lock: a write beside a sibling's refresh could overwrite the
        // rotation it is about to store (a store that cannot be locked is most likely
        // unreachable anyway).
        if guard.is_ok() {
            self.save(&credentials);
        }
        drop(guard);
        self.carry(step);
        Ok(())
    }

    /// Runs `f` (store I/O: a file, fsync) on tokio's blocking pool, never on a runtime
    /// worker that requests need; `otherwise` if it panicked.
    async fn off_runtime<T: Send + 'static>(
        self: &Arc<Self>,
        otherwise: T,
        f: impl FnOnce(&Inner) -> T + Send + 'static,
    ) -> T {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .unwrap_or(otherwise)
    }

    /// What the store holds (an unreadable store is logged and read as empty).
    fn stored(&self) -> Option<StoredCredentials> {
        self.read().unwrap_or(None)
    }

    /// What the store holds, or `Err` (logged) if it could not be read.
    fn read(&self) -> Result<Option<StoredCredentials>, ()> {
        self.store.load().map_err(|e| {
            tracing::error!(error = %e, "reauth: could not read the credential store");
        })
    }

    /// §12.3: keeps a refresh token rotated by an unusable answer, so the retry presents it.
    fn keep(&self, rotated: &Secret) {
        match keep_rotation(self.stored().as_ref(), rotated) {
            Some(stored) => self.write(&stored, "a rotated refresh token"),
            None => tracing::error!(
                "reauth: a rotated refresh token arrived in an unusable answer and the store holds nothing to keep it with"
            ),
        }
    }
}

/// One request between its submit and its end. Dropping it before it ended (the caller's
/// future was dropped, or a transport error) abandons it: a transport error if it was in
/// flight, a cancel if it waited.
struct Pending<'a> {
    inner: &'a Inner,
    id: RequestId,
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            {
                let mut mailbox = lock(&self.inner.mailbox);
                mailbox.waiting.remove(&self.id);
                mailbox.early.remove(&self.id);
                if mailbox.abandoned.len() == ABANDONED_KEPT {
                    mailbox.abandoned.pop_front();
                }
                mailbox.abandoned.push_back(self.id);
            }
            if let Ok(step) = self.inner.driver.abandon(self.inner.now(), self.id) {
                self.inner.carry(step);
            }
            tracing::debug!(
                request = self.id.0,
                "reauth: request ended without a response"
            );
        }
    }
}

fn failed(reason: FailReason) -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(RequestFailed { reason })
}

fn closed(e: DriverError) -> reqwest_middleware::Error {
    match e {
        DriverError::Closed => reqwest_middleware::Error::middleware(Closed),
        e => reqwest_middleware::Error::middleware(e),
    }
}

#[async_trait::async_trait]
impl Middleware for Reauth {
    /// The steady state — sent once, answered, complete — runs in this future alone; a
    /// request that must wait or is refused continues in `Reauth::rest`, boxed, so that
    /// the common future stays small (it is allocated and moved per request).
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let inner = &*self.inner;
        let options = self.options(&req, extensions);
        let (id, step) = inner.driver.submit(inner.now(), options).map_err(closed)?;
        let mut pending = Pending {
            inner,
            id,
            done: false,
        };
        let (access_token, generation) = match inner.carry(step) {
            Own::Send {
                access_token,
                generation,
            } => (access_token, generation),
            own => {
                let state = Replay {
                    original: Some(req),
                    kept: None,
                    last: None,
                };
                return Box::pin(self.rest(
                    pending,
                    own,
                    state,
                    options.replayable,
                    extensions,
                    next,
                ))
                .await;
            }
        };
        // A copy is kept for a replay; the first send takes the request itself.
        let kept = if options.replayable {
            replay_copy(&req).map(Box::new)
        } else {
            None
        };
        let response = inner
            .send(req, generation, &access_token, extensions, &next)?
            .await?;
        let own = inner.report(&mut pending, &response)?;
        if own == Own::Complete {
            pending.done = true;
            return Ok(response);
        }
        let state = Replay {
            original: None,
            kept,
            last: Some(response),
        };
        Box::pin(self.rest(pending, own, state, options.replayable, extensions, next)).await
    }
}

/// The future of the next middleware (reqwest-middleware's `BoxFuture`).
type NextFuture<'a> = std::pin::Pin<
    Box<dyn Future<Output = reqwest_middleware::Result<reqwest::Response>> + Send + 'a>,
>;

/// What a request that waits or is refused carries between its sends.
struct Replay {
    /// The request itself, until its first send.
    original: Option<reqwest::Request>,
    /// A copy kept to replay it (`None`: not replayable).
    kept: Option<Box<reqwest::Request>>,
    /// The last response, handed to the caller if the request ends with it.
    last: Option<reqwest::Response>,
}

impl Inner {
    /// Sends `request` with the bearer token of `generation`: the next middleware's
    /// future, boxed (the request moves into it, not into the caller's future). A transport
    /// error returns from it: the drop of the request's `Pending` reports it (rule 7.17).
    fn send<'a>(
        &self,
        mut request: reqwest::Request,
        generation: Generation,
        access_token: &Secret,
        extensions: &'a mut Extensions,
        next: &Next<'a>,
    ) -> reqwest_middleware::Result<NextFuture<'a>> {
        let value = self
            .bearer(generation, access_token)
            .map_err(reqwest_middleware::Error::middleware)?;
        request.headers_mut().insert(AUTHORIZATION, value);
        Ok(next.clone().run(request, extensions))
    }

    /// Reports `response` to the driver; the request's own command next.
    fn report(
        &self,
        pending: &mut Pending<'_>,
        response: &reqwest::Response,
    ) -> reqwest_middleware::Result<Own> {
        let status = response.status().as_u16();
        // Only a refresh status (400..=599 by the config's range) has its challenges read.
        let challenges: Vec<&str> = if status >= 400 {
            response
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect()
        } else {
            Vec::new()
        };
        let step = self
            .driver
            .response(self.now(), pending.id, status, &challenges)
            .map_err(|e| {
                // Closed: the driver cancelled it. Any other refusal (a status outside
                // 100..=599) leaves it in flight: the drop of `pending` ends it.
                pending.done = e == DriverError::Closed;
                closed(e)
            })?;
        Ok(self.carry(step))
    }
}

impl Reauth {
    /// The rest of a request that must wait or was refused: its commands until it ends.
    async fn rest(
        &self,
        mut pending: Pending<'_>,
        mut own: Own,
        mut state: Replay,
        replayable: bool,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let inner = &*self.inner;
        loop {
            let (access_token, generation) = match own {
                Own::Send {
                    access_token,
                    generation,
                } => (access_token, generation),
                Own::Wait => {
                    own = match inner.wait(pending.id).await {
                        Wake::Send {
                            access_token,
                            generation,
                        } => Own::Send {
                            access_token,
                            generation,
                        },
                        Wake::Complete => Own::Complete,
                        Wake::Fail(reason) => Own::Fail(reason),
                        Wake::Closed => {
                            pending.done = true;
                            return Err(reqwest_middleware::Error::middleware(Closed));
                        }
                    };
                    continue;
                }
                // Rule 7.6/7.20 and §12.4: the caller gets the refusal the request got.
                Own::Complete | Own::CallersAnswer => {
                    pending.done = true;
                    return state.last.ok_or_else(|| failed(FailReason::Unauthorized));
                }
                Own::Fail(reason) => {
                    pending.done = true;
                    if let (FailReason::Unauthorized, Some(response)) = (reason, state.last.take())
                    {
                        return Ok(response);
                    }
                    return Err(failed(reason));
                }
            };
            let request = match state.original.take() {
                Some(first) => {
                    if replayable {
                        state.kept = replay_copy(&first).map(Box::new);
                    }
                    Some(first)
                }
                None => state.kept.as_deref().and_then(replay_copy),
            };
            // The core never replays a non-replayable request; said, not assumed (the drop
            // of `pending` cancels it).
            let request = request.ok_or_else(|| failed(FailReason::Unauthorized))?;
            drop(state.last.take());
            let response = inner
                .send(request, generation, &access_token, extensions, &next)?
                .await?;
            own = inner.report(&mut pending, &response)?;
            state.last = Some(response);
        }
    }

    /// The request's options: the caller's [`RequestOptions`] from the request's
    /// extensions (`reqwest_middleware::RequestBuilder::with_extension`), else the
    /// defaults; the route is the caller's or the default one (method, origin, path —
    /// contract §12.4, rule 20); a streaming body is never replayed.
    fn options(&self, req: &reqwest::Request, extensions: &Extensions) -> RequestOptions {
        let mut options = extensions
            .get::<RequestOptions>()
            .copied()
            .unwrap_or_default();
        if options.route.is_none() {
            let url = req.url();
            options = options.with_route(default_route(
                req.method().as_str(),
                url.scheme(),
                url.host_str().unwrap_or(""),
                url.port_or_known_default(),
                url.path(),
            ));
        }
        // A body in memory can be sent again; a stream cannot (tested without cloning).
        if options.replayable && req.body().is_some_and(|b| b.as_bytes().is_none()) {
            options = options.with_replayable(false);
        }
        options
    }
}

/// A copy of `req` kept to replay it; `None` for a streaming body. A request with a body
/// is cloned by reqwest (`try_clone`); one without — most — is copied field by field:
/// method, URL, headers, version and timeout, without the three allocations `try_clone`
/// spends writing a timeout entry even when there is none. Only reqwest-internal
/// extensions that a request converted from an `http::Request` may carry are not copied
/// (a replay goes out without them; the first send has the request itself).
fn replay_copy(req: &reqwest::Request) -> Option<reqwest::Request> {
    if req.body().is_some() {
        return req.try_clone();
    }
    let mut copy = reqwest::Request::new(req.method().clone(), req.url().clone());
    *copy.headers_mut() = req.headers().clone();
    *copy.version_mut() = req.version();
    if let Some(timeout) = req.timeout() {
        *copy.timeout_mut() = Some(*timeout);
    }
    Some(copy)
}

/// The timer task: sleeps until the driver's next deadline; ends with the last `Reauth`
/// or when it was closed.
async fn timer(me: Weak<Inner>) {
    loop {
        let Some(inner) = me.upgrade() else { return };
        if inner.driver.is_closed() {
            return;
        }
        let wait = match inner.driver.deadline().ok().flatten() {
            Some(at) => Duration::from_millis(at.saturating_sub(inner.now())),
            None => Duration::from_secs(60),
        };
        // `notify_one` leaves a permit when nobody waits, so a step that moved the
        // deadline between here and the select below still wakes it.
        let timer = Arc::clone(&inner.timer);
        drop(inner); // the task must not keep the coordinator alive
        tokio::select! {
            _ = tokio::time::sleep(wait) => {
                if let Some(inner) = me.upgrade()
                    && let Ok(step) = inner.driver.timeout(inner.now())
                {
                    inner.carry(step);
                }
            }
            _ = timer.notified() => {}
        }
    }
}

/// The token endpoint, called on its own client.
struct Endpoint {
    http: reqwest::Client,
    token: TokenEndpoint,
    /// How long one call may take, body included: the core's refresh deadline (after it,
    /// the core has abandoned the attempt and an endless body must not be read on).
    deadline: Duration,
}

enum Outcome {
    Succeeded(Credentials),
    Failed(RefreshFailure),
}

/// A refresh failure with nothing to say about when to retry.
const TRANSIENT: RefreshFailure = RefreshFailure::Transient {
    retry_after_ms: None,
};

/// A refresh attempt (contract §12.2, §12.3): under the store's lock, adopt or follow
/// what the store holds, else call the server; store a success (or keep a rotation from
/// an unusable answer) before the lock is released; then report to the core.
async fn refresh(inner: Arc<Inner>, attempt: AttemptId, refresh_token: Secret) {
    let locked = inner
        .off_runtime(
            Err(std::io::Error::other("the store's lock panicked")),
            |i| i.store.lock(),
        )
        .await;
    // Never a refresh without the lock: a sibling holding it may be presenting the same
    // refresh token right now (§12.2). The attempt is transient; the core retries it.
    let guard = match locked {
        Ok(guard) => guard,
        Err(e) => {
            tracing::error!(error = %e, "reauth: could not lock the credential store; refresh attempt reported transient");
            report(&inner, attempt, Outcome::Failed(TRANSIENT));
            return;
        }
    };
    let outcome = exchange(&inner, refresh_token).await;
    if let Outcome::Succeeded(credentials) = &outcome {
        // Visible to siblings before the lock is released.
        let credentials = credentials.clone();
        inner.off_runtime((), move |i| i.save(&credentials)).await;
    }
    // Releasing a fleet's lock is a round trip to its database: off the runtime too.
    inner.off_runtime((), move |_| drop(guard)).await;
    report(&inner, attempt, outcome);
}

/// Under the lock: what the store holds decides whether to adopt it or which token to
/// present; a rejection re-reads the store once (§12.2). A store that cannot be read is
/// not an empty one — a sibling may have rotated, and presenting this process's token
/// (or accepting a rejection) then would be wrong: the attempt is transient.
async fn exchange(inner: &Arc<Inner>, refresh_token: Secret) -> Outcome {
    let Ok(stored) = inner.off_runtime(Err(()), Inner::read).await else {
        return Outcome::Failed(TRANSIENT);
    };
    let mut plan = plan_refresh(&refresh_token, stored.as_ref(), SystemTime::now());
    let mut followed = false;
    loop {
        let sent = match plan {
            RefreshPlan::Adopt(credentials) => {
                tracing::info!("reauth: adopting credentials another process rotated");
                return Outcome::Succeeded(credentials);
            }
            RefreshPlan::Call(token) => token,
        };
        match inner.endpoint.call(&sent).await {
            TokenAnswer::Succeeded { credentials, note } => {
                if let Some(note) = note {
                    tracing::warn!(%note, "reauth: token response used despite a problem");
                }
                return Outcome::Succeeded(credentials);
            }
            TokenAnswer::Rejected { error } => {
                tracing::warn!(%error, "reauth: token endpoint refused the refresh token");
                let Ok(stored) = inner.off_runtime(Err(()), Inner::read).await else {
                    return Outcome::Failed(TRANSIENT);
                };
                match after_rejection(&sent, stored.as_ref(), SystemTime::now()) {
                    Some(next) if !followed => {
                        followed = true;
                        plan = next;
                    }
                    _ => return Outcome::Failed(RefreshFailure::Rejected),
                }
            }
            TokenAnswer::Transient {
                retry_after_ms,
                problem,
                rotated_refresh_token,
            } => {
                tracing::warn!(%problem, "reauth: refresh failed; transient");
                if let Some(rotated) = rotated_refresh_token {
                    inner.off_runtime((), move |i| i.keep(&rotated)).await;
                }
                return Outcome::Failed(RefreshFailure::Transient { retry_after_ms });
            }
        }
    }
}

/// Tells the core how a refresh attempt ended.
fn report(inner: &Arc<Inner>, attempt: AttemptId, outcome: Outcome) {
    let now = inner.now();
    let reported = match outcome {
        Outcome::Succeeded(credentials) => {
            inner.driver.refresh_succeeded(now, attempt, credentials)
        }
        Outcome::Failed(failure) => inner.driver.refresh_failed(now, attempt, failure),
    };
    match reported {
        Ok(step) => {
            inner.carry(step);
        }
        // Closed, or an attempt the core gave up on (its deadline passed): nobody waits.
        Err(DriverError::Closed | DriverError::Input(reauth::InputError::UnknownAttempt(_))) => {}
        Err(e) => {
            // Cannot happen for answers read by reauth-host (it validates what it returns);
            // said, not assumed: report the attempt transient rather than leave it waiting.
            tracing::warn!(error = %e, attempt = attempt.0, "reauth: refresh result refused; transient");
            if let Ok(step) = inner.driver.refresh_failed(inner.now(), attempt, TRANSIENT) {
                inner.carry(step);
            }
        }
    }
}

impl Endpoint {
    /// One call, within the core's refresh deadline and `MAX_TOKEN_RESPONSE_BYTES`.
    async fn call(&self, refresh_token: &Secret) -> TokenAnswer {
        match tokio::time::timeout(self.deadline, self.exchange(refresh_token)).await {
            Ok(answer) => answer,
            Err(_) => TokenAnswer::no_answer(Problem::BrokenOff),
        }
    }

    async fn exchange(&self, refresh_token: &Secret) -> TokenAnswer {
        let request = self.token.refresh_request(refresh_token);
        let mut call = self.http.post(&request.url);
        for (name, value) in &request.headers {
            let Ok(mut value) = HeaderValue::from_str(value.expose()) else {
                return TokenAnswer::no_answer(Problem::NotJson);
            };
            value.set_sensitive(true);
            call = call.header(*name, value);
        }
        let mut response = match call.body(request.body.expose().to_owned()).send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(
                    timeout = e.is_timeout(),
                    "reauth: token endpoint unreachable; transient"
                );
                return TokenAnswer::no_answer(Problem::BrokenOff);
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Read at most one byte past the limit: an endless body stops here.
        let mut body = Zeroizing::new(Vec::new()); // it holds tokens: wiped when dropped
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_TOKEN_RESPONSE_BYTES + 1 - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() > MAX_TOKEN_RESPONSE_BYTES {
                        break;
                    }
                }
                Ok(None) => break,
                // The body broke off. A 200's bytes so far are still read: a rotation that
                // arrived before the cut is kept (contract §12.3).
                Err(_) if status == 200 => break,
                Err(_) => {
                    tracing::warn!(status, "reauth: token response broke off; transient");
                    return TokenAnswer::no_answer(Problem::BrokenOff);
                }
            }
        }
        read_token_response(
            status,
            retry_after.as_deref(),
            &body,
            refresh_token,
            SystemTime::now(),
        )
    }
}

#[cfg(test)]
mod tests {
    /// The field-by-field copy is what `try_clone` makes.
    #[test]
    fn a_replay_copy_is_a_clone() {
        let client = reqwest::Client::new();
        let plain = client
            .get("https://h.example/a?b=c")
            .header("x-one", "1")
            .header("x-two", "2")
            .version(http::Version::HTTP_2)
            .build()
            .expect("request");
        let timed = client
            .get("https://h.example/a")
            .timeout(std::time::Duration::from_secs(3))
            .build()
            .expect("request");
        let posted = client
            .post("https://h.example/a")
            .body("form")
            .build()
            .expect("request");
        for req in [plain, timed, posted] {
            let ours = super::replay_copy(&req).expect("copy");
            let theirs = req.try_clone().expect("clone");
            assert_eq!(ours.method(), theirs.method());
            assert_eq!(ours.url(), theirs.url());
            assert_eq!(ours.headers(), theirs.headers());
            assert_eq!(ours.version(), theirs.version());
            assert_eq!(ours.timeout(), theirs.timeout());
            assert_eq!(
                ours.body().and_then(reqwest::Body::as_bytes),
                theirs.body().and_then(reqwest::Body::as_bytes)
            );
        }
    }
}
