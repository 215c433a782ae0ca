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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use http::Extensions;
use http::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reauth::{
    AttemptId, Command, ConfigError, Coordinator, InputError, RefreshFailure, RequestId,
    RequestOptions, SharedCoordinator, SharedError,
};
pub use reauth::{Config, Credentials, FailReason, LogoutReason, Secret, Stats};
use reqwest_middleware::{Middleware, Next};
use tokio::sync::{Notify, mpsc};

mod store;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

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
    Credentials(#[from] SharedError),
    /// The store could not be read.
    #[error("credential store: {0}")]
    Store(#[from] std::io::Error),
    /// `build` was called outside a tokio runtime.
    #[error("reauth-reqwest needs a tokio runtime (build it inside one)")]
    NoRuntime,
}

/// The coordinator failed a request; `reason` says why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("request failed: {reason}")]
pub struct RequestFailed {
    /// Why.
    pub reason: FailReason,
}

type LogoutHook = Arc<dyn Fn(LogoutReason) + Send + Sync>;

/// Configures a [`Reauth`]. See the crate documentation for an example.
pub struct Builder {
    token_url: String,
    client_id: String,
    client_secret: Option<Secret>,
    credentials: Option<Credentials>,
    store: Arc<dyn CredentialStore>,
    config: Config,
    on_logout: Option<LogoutHook>,
    token_client: Option<reqwest::Client>,
}

impl Builder {
    /// The client secret, for confidential clients (sent in the form body).
    pub fn client_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// Starts the session with these credentials (and writes them to the store).
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

    /// Called once per session end, after the store is cleared. It must not block.
    pub fn on_logout(mut self, hook: impl Fn(LogoutReason) + Send + Sync + 'static) -> Self {
        self.on_logout = Some(Arc::new(hook));
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
                .build()
                .map_err(std::io::Error::other)?,
        };
        let core = SharedCoordinator::new(self.config)?;
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            core,
            epoch: Instant::now(),
            waiters: Mutex::new(HashMap::new()),
            endpoint: TokenEndpoint {
                http: token_client,
                url: self.token_url,
                client_id: self.client_id,
                client_secret: self.client_secret,
            },
            store: self.store,
            on_logout: self.on_logout,
            timer: Arc::new(Notify::new()),
        });
        let initial = match self.credentials {
            Some(c) => {
                inner.save(&c);
                Some(c)
            }
            None => inner
                .store
                .load()?
                .map(|s| s.to_credentials(SystemTime::now())),
        };
        if let Some(credentials) = initial {
            inner.apply(|core, now| core.login(now, credentials))?;
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
            .field("token_url", &self.inner.endpoint.url)
            .field("client_id", &self.inner.endpoint.client_id)
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
            credentials: None,
            store: Arc::new(MemoryStore::new()),
            config: Config::default(),
            on_logout: None,
            token_client: None,
        }
    }

    /// Starts (or replaces) the session with credentials the app obtained.
    pub fn login(&self, credentials: Credentials) -> Result<(), SharedError> {
        self.inner.save(&credentials);
        self.inner.apply(|core, now| core.login(now, credentials))
    }

    /// Ends the session: waiting requests fail `LoggedOut`, the store is cleared and
    /// `on_logout(Requested)` runs.
    pub fn logout(&self) {
        let _ = self.inner.apply(|core, now| core.logout(now));
    }

    /// The app knows the token is bad (a push said so): the next request refreshes.
    pub fn force_refresh(&self) {
        let _ = self.inner.apply(|core, now| core.force_refresh(now));
    }

    /// The coordinator's counters.
    pub fn stats(&self) -> Stats {
        self.inner.core.stats().unwrap_or_default()
    }

    /// Whether a session exists.
    pub fn is_logged_in(&self) -> bool {
        self.inner
            .core
            .with(|c| c.is_logged_in())
            .is_ok_and(|(logged_in, _)| logged_in)
    }
}

enum Event {
    Send(Secret),
    Complete,
    Fail(FailReason),
}

type Waiters = HashMap<RequestId, mpsc::UnboundedSender<Event>>;

struct Inner {
    me: Weak<Inner>,
    core: SharedCoordinator,
    epoch: Instant,
    /// Every core call and the routing of its batch happen under this lock, so batches
    /// are carried out in the order the core produced them. Never held across an await.
    waiters: Mutex<Waiters>,
    endpoint: TokenEndpoint,
    store: Arc<dyn CredentialStore>,
    on_logout: Option<LogoutHook>,
    timer: Arc<Notify>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Applies one input and carries out its batch; the logout hook runs after the lock.
    fn apply<T>(
        &self,
        input: impl FnOnce(&mut Coordinator, u64) -> Result<T, InputError>,
    ) -> Result<T, SharedError> {
        self.apply_then(input, |_, _| {})
    }

    /// [`apply`](Self::apply), with `register` run on the input's result before its batch
    /// is routed, under the same lock (a submit registers its waiter there, so no
    /// command for the new request can be routed before it).
    fn apply_then<T>(
        &self,
        input: impl FnOnce(&mut Coordinator, u64) -> Result<T, InputError>,
        register: impl FnOnce(&mut Waiters, &T),
    ) -> Result<T, SharedError> {
        let mut waiters = lock(&self.waiters);
        let now = self.now();
        let mut batch = Vec::new();
        let value = self.core.run_into(&mut batch, |core| input(core, now))??;
        register(&mut waiters, &value);
        let logouts = self.route(&mut waiters, batch, now);
        drop(waiters);
        if let Some(hook) = &self.on_logout {
            logouts.into_iter().for_each(|reason| hook(reason));
        }
        Ok(value)
    }

    /// Carries out a batch, in order (under the waiters lock). Returns the logouts, whose
    /// hook runs once the lock is released.
    fn route(&self, waiters: &mut Waiters, batch: Vec<Command>, now: u64) -> Vec<LogoutReason> {
        let mut logouts = Vec::new();
        for command in batch {
            match command {
                Command::Send {
                    id, access_token, ..
                }
                | Command::Replay {
                    id, access_token, ..
                } => {
                    if let Some(w) = waiters.get(&id) {
                        let _ = w.send(Event::Send(access_token));
                    }
                }
                Command::Complete { id } => {
                    if let Some(w) = waiters.remove(&id) {
                        let _ = w.send(Event::Complete);
                    }
                }
                Command::Fail { id, reason } => {
                    if let Some(w) = waiters.remove(&id) {
                        let _ = w.send(Event::Fail(reason));
                    }
                }
                Command::Refresh {
                    attempt,
                    refresh_token,
                } => {
                    if let Some(this) = self.me.upgrade() {
                        tokio::spawn(refresh(this, attempt, refresh_token));
                    }
                }
                Command::StoreCredentials {
                    credentials,
                    expires_at,
                    ..
                } => {
                    let wall = SystemTime::now();
                    let mut stored = StoredCredentials::from_credentials(&credentials, wall);
                    // §12.1: the expiry comes from `expires_at`, carried to the wall clock.
                    stored.expires_at = expires_at.and_then(|at| {
                        wall.checked_add(Duration::from_millis(at.saturating_sub(now)))
                    });
                    if let Err(e) = self.store.save(&stored) {
                        tracing::error!(error = %e, "reauth: could not store the new credentials");
                    }
                }
                Command::Logout { reason } => {
                    if let Err(e) = self.store.clear() {
                        tracing::error!(error = %e, "reauth: could not clear the credential store");
                    }
                    tracing::info!(reason = reason.as_str(), "reauth: logged out");
                    logouts.push(reason);
                }
            }
        }
        self.timer.notify_one();
        logouts
    }

    fn save(&self, credentials: &Credentials) {
        let stored = StoredCredentials::from_credentials(credentials, SystemTime::now());
        if let Err(e) = self.store.save(&stored) {
            tracing::error!(error = %e, "reauth: could not store the credentials");
        }
    }

    /// Submits a request; its waiter is registered before its batch is routed.
    fn submit(self: &Arc<Self>, options: RequestOptions) -> Result<Pending, SharedError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.apply_then(
            |core, now| core.submit(now, options),
            |waiters, id| {
                waiters.insert(*id, tx);
            },
        )?;
        Ok(Pending {
            inner: Arc::clone(self),
            id,
            events: rx,
            done: false,
        })
    }
}

/// One request between its submit and its end. Dropping it early (the caller's future was
/// dropped) cancels the request in the coordinator.
struct Pending {
    inner: Arc<Inner>,
    id: RequestId,
    events: mpsc::UnboundedReceiver<Event>,
    done: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            let id = self.id;
            let _ = self.inner.apply(|core, now| core.cancel(now, id));
            tracing::debug!(
                request = id.0,
                "reauth: request dropped by its caller; cancelled"
            );
        }
        lock(&self.inner.waiters).remove(&self.id);
    }
}

#[async_trait::async_trait]
impl Middleware for Reauth {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        // A body that cannot be cloned (a stream) can be sent once only.
        let replayable = req.try_clone().is_some();
        let mut pending = self
            .inner
            .submit(RequestOptions::default().with_replayable(replayable))
            .map_err(reqwest_middleware::Error::middleware)?;
        let id = pending.id;
        let mut original = Some(req);
        let mut last: Option<reqwest::Response> = None;
        loop {
            let Some(event) = pending.events.recv().await else {
                pending.done = true;
                return Err(reqwest_middleware::Error::middleware(RequestFailed {
                    reason: FailReason::LoggedOut,
                }));
            };
            match event {
                Event::Send(token) => {
                    let request = if replayable {
                        original.as_ref().and_then(reqwest::Request::try_clone)
                    } else {
                        original.take()
                    };
                    let Some(mut request) = request else {
                        // The core never replays a non-replayable request; said, not assumed.
                        pending.done = true;
                        let _ = self.inner.apply(|core, now| core.cancel(now, id));
                        return Err(reqwest_middleware::Error::middleware(RequestFailed {
                            reason: FailReason::Unauthorized,
                        }));
                    };
                    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                        .map_err(reqwest_middleware::Error::middleware)?;
                    value.set_sensitive(true);
                    request.headers_mut().insert(AUTHORIZATION, value);
                    drop(last.take());
                    match next.clone().run(request, extensions).await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            last = Some(response);
                            self.inner
                                .apply(|core, now| core.handle_response(now, id, status))
                                .map_err(reqwest_middleware::Error::middleware)?;
                        }
                        Err(e) => {
                            // No HTTP status (rule 7.17): the caller gets the error as is.
                            pending.done = true;
                            let _ = self
                                .inner
                                .apply(|core, now| core.handle_transport_error(now, id));
                            return Err(e);
                        }
                    }
                }
                Event::Complete => {
                    pending.done = true;
                    return last.ok_or_else(|| {
                        reqwest_middleware::Error::middleware(RequestFailed {
                            reason: FailReason::Unauthorized,
                        })
                    });
                }
                Event::Fail(reason) => {
                    pending.done = true;
                    // Rule 7.6/7.20: the caller gets the refusal the request got.
                    if let (FailReason::Unauthorized, Some(response)) = (reason, last.take()) {
                        return Ok(response);
                    }
                    return Err(reqwest_middleware::Error::middleware(RequestFailed {
                        reason,
                    }));
                }
            }
        }
    }
}

/// The timer task: sleeps until the core's next deadline; ends with the last `Reauth`.
async fn timer(me: Weak<Inner>) {
    loop {
        let Some(inner) = me.upgrade() else { return };
        let wait = match inner.core.poll_timeout().ok().flatten() {
            Some(at) => Duration::from_millis(at.saturating_sub(inner.now())),
            None => Duration::from_secs(60),
        };
        // `notify_one` leaves a permit when nobody waits, so a batch routed between here
        // and the select below still wakes it.
        let timer = Arc::clone(&inner.timer);
        drop(inner); // the task must not keep the coordinator alive
        tokio::select! {
            _ = tokio::time::sleep(wait) => {
                if let Some(inner) = me.upgrade() {
                    let _ = inner.apply(|core, now| core.handle_timeout(now));
                }
            }
            _ = timer.notified() => {}
        }
    }
}

/// The token endpoint, called on its own client.
struct TokenEndpoint {
    http: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: Option<Secret>,
}

enum Outcome {
    Succeeded(Credentials),
    Failed(RefreshFailure),
}

fn transient(retry_after_ms: Option<u64>) -> Outcome {
    Outcome::Failed(RefreshFailure::Transient { retry_after_ms })
}

/// A refresh attempt (contract §12.2): under the store's lock, adopt a sibling's rotation
/// or call the server; on a rejection re-read the store once; store a success before the
/// lock is released; then report to the core.
async fn refresh(inner: Arc<Inner>, attempt: AttemptId, refresh_token: Secret) {
    let store = Arc::clone(&inner.store);
    let guard = match tokio::task::spawn_blocking(move || store.lock()).await {
        Ok(Ok(guard)) => Some(guard),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reauth: could not lock the credential store; refreshing without it");
            None
        }
        Err(_) => None,
    };
    let mut outcome = match sibling(&inner, &refresh_token) {
        Some(adopted) => adopted,
        None => inner.endpoint.call(&refresh_token).await,
    };
    if matches!(outcome, Outcome::Failed(RefreshFailure::Rejected))
        && let Some(adopted) = sibling(&inner, &refresh_token)
    {
        outcome = adopted;
    }
    if let Outcome::Succeeded(credentials) = &outcome {
        inner.save(credentials); // visible to siblings before the lock is released
    }
    drop(guard);
    let reported = match outcome {
        Outcome::Succeeded(credentials) => {
            inner.apply(|core, now| core.handle_refresh_succeeded(now, attempt, credentials))
        }
        Outcome::Failed(failure) => {
            inner.apply(|core, now| core.handle_refresh_failed(now, attempt, failure))
        }
    };
    if let Err(e) = reported {
        // Credentials the core refuses (an empty or whitespace token): report the attempt
        // as transient rather than leave it to its deadline.
        tracing::warn!(error = %e, attempt = attempt.0, "reauth: token response refused; transient");
        let _ = inner.apply(|core, now| {
            core.handle_refresh_failed(
                now,
                attempt,
                RefreshFailure::Transient {
                    retry_after_ms: None,
                },
            )
        });
    }
}

/// A sibling process's rotation, if the store holds a refresh token other than ours.
fn sibling(inner: &Inner, refresh_token: &Secret) -> Option<Outcome> {
    let stored = inner.store.load().ok().flatten()?;
    let theirs = stored.refresh_token.as_ref()?;
    if theirs == refresh_token {
        return None;
    }
    tracing::info!("reauth: adopting credentials another process rotated");
    Some(Outcome::Succeeded(stored.to_credentials(SystemTime::now())))
}

#[derive(serde::Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    /// RFC 6749 says an integer; a float (some servers send `3600.0`) is accepted too.
    #[serde(default)]
    expires_in: Option<f64>,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: String,
}

impl TokenEndpoint {
    async fn call(&self, refresh_token: &Secret) -> Outcome {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", self.client_id.as_str()),
        ];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose()));
        }
        let response = match self
            .http
            .post(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(
                    timeout = e.is_timeout(),
                    "reauth: token endpoint unreachable; transient"
                );
                return transient(None);
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after_ms(response.headers().get(RETRY_AFTER), SystemTime::now());
        match response.bytes().await {
            Ok(body) => classify(status, retry_after, &body),
            Err(_) => {
                tracing::warn!(status, "reauth: token response broke off; transient");
                transient(retry_after)
            }
        }
    }
}

/// RFC 6749 §5.1/§5.2: 200 with a bearer `access_token` → credentials; 400/401 with an
/// OAuth `error` → rejected; anything else (5xx, 429, a malformed body) → transient.
fn classify(status: u16, retry_after: Option<u64>, body: &[u8]) -> Outcome {
    if status == 200 {
        let parsed: TokenBody = match serde_json::from_slice(body) {
            Ok(b) => b,
            Err(e) => {
                // serde_json names line and column, never the text.
                tracing::warn!(error = %e, "reauth: malformed token response; transient");
                return transient(None);
            }
        };
        if let Some(t) = &parsed.token_type
            && !t.eq_ignore_ascii_case("bearer")
        {
            tracing::warn!(token_type = %t, "reauth: token response is not a bearer token; transient");
            return transient(None);
        }
        let mut credentials = Credentials::new(parsed.access_token);
        if let Some(r) = parsed.refresh_token {
            credentials = credentials.with_refresh_token(r);
        }
        match parsed.expires_in {
            Some(s) if s.is_finite() && s >= 0.0 => {
                credentials = credentials.with_expires_in_ms((s * 1000.0) as u64);
            }
            Some(_) => {
                tracing::warn!("reauth: token response with an invalid expires_in; transient");
                return transient(None);
            }
            None => {}
        }
        return Outcome::Succeeded(credentials);
    }
    if (status == 400 || status == 401)
        && let Ok(e) = serde_json::from_slice::<ErrorBody>(body)
    {
        tracing::warn!(status, error = %e.error, "reauth: token endpoint refused the refresh token");
        return Outcome::Failed(RefreshFailure::Rejected);
    }
    tracing::warn!(
        status,
        "reauth: token endpoint answered {status}; transient"
    );
    transient(retry_after)
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), in milliseconds.
fn retry_after_ms(value: Option<&HeaderValue>, now: SystemTime) -> Option<u64> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(
        at.duration_since(now)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository README shows the crate README's example verbatim (minus the hidden
    /// `#` lines), so the README's code is the code the doctest compiles.
    #[test]
    fn the_repository_readme_shows_the_compiled_example() {
        let crate_readme = include_str!("../README.md");
        let root_readme = include_str!("../../../README.md");
        let start =
            crate_readme.find("```rust,no_run\n").expect("example") + "```rust,no_run\n".len();
        let end = start + crate_readme[start..].find("```").expect("end");
        let shown: String = crate_readme[start..end]
            .lines()
            .filter(|l| !l.starts_with("# "))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            root_readme.contains(&shown),
            "README.md must show:\n{shown}"
        );
    }

    fn rejected(o: &Outcome) -> bool {
        matches!(o, Outcome::Failed(RefreshFailure::Rejected))
    }

    fn transient_after(o: &Outcome) -> Option<Option<u64>> {
        match o {
            Outcome::Failed(RefreshFailure::Transient { retry_after_ms }) => Some(*retry_after_ms),
            _ => None,
        }
    }

    #[test]
    fn token_answers_are_read_as_rfc_6749_says() {
        let ok = classify(
            200,
            None,
            br#"{"access_token":"a","token_type":"Bearer","expires_in":60,"refresh_token":"r"}"#,
        );
        let Outcome::Succeeded(c) = ok else {
            panic!("a success")
        };
        assert_eq!(
            (c.access_token.expose(), c.expires_in_ms),
            ("a", Some(60_000))
        );
        assert_eq!(c.refresh_token.as_ref().map(Secret::expose), Some("r"));
        let float = classify(200, None, br#"{"access_token":"a","expires_in":1.5}"#);
        assert!(matches!(float, Outcome::Succeeded(c) if c.expires_in_ms == Some(1_500)));
        assert!(rejected(&classify(
            400,
            None,
            br#"{"error":"invalid_grant"}"#
        )));
        assert!(rejected(&classify(
            401,
            None,
            br#"{"error":"invalid_client"}"#
        )));
        assert_eq!(
            transient_after(&classify(400, Some(5), b"<html>proxy</html>")),
            Some(Some(5))
        );
        assert_eq!(
            transient_after(&classify(503, Some(2_000), b"busy")),
            Some(Some(2_000))
        );
        assert_eq!(
            transient_after(&classify(429, None, br#"{"error":"slow_down"}"#)),
            Some(None)
        );
        assert_eq!(
            transient_after(&classify(200, None, b"{\"access_tok")),
            Some(None),
            "a truncated body"
        );
        assert_eq!(
            transient_after(&classify(
                200,
                None,
                br#"{"access_token":"a","token_type":"mac"}"#
            )),
            Some(None)
        );
        assert_eq!(
            transient_after(&classify(
                200,
                None,
                br#"{"access_token":"a","expires_in":-1}"#
            )),
            Some(None)
        );
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after_ms(Some(&HeaderValue::from_static("3")), now),
            Some(3_000)
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(
            retry_after_ms(Some(&HeaderValue::from_str(&later).expect("ascii")), now),
            Some(7_000)
        );
        assert_eq!(
            retry_after_ms(Some(&HeaderValue::from_static("soon")), now),
            None
        );
        assert_eq!(retry_after_ms(None, now), None);
    }
}
