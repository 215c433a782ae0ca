//! An async host for reauth: routes the coordinator's commands to HTTP calls and back to
//! the tasks waiting on them. Small on purpose — copy it into your own tokio + reqwest
//! app. One `ReauthClient` per session; share it in an `Arc`.
//!
//! - `get(path)` submits a request, carries out the batch the core returns, and waits
//!   for that request's terminal command (`Complete` → the response, `Fail` → the
//!   reason).
//! - Every `Send`/`Replay` and `Refresh` runs on its own task, so a refresh never waits
//!   behind the requests it unblocks; each task feeds its outcome back and carries out
//!   the batch that produces.
//! - One timer task sleeps until `poll_timeout` and calls `handle_timeout`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reauth::{
    AttemptId, Batch, Command, Config, Credentials, FailReason, LogoutReason, RefreshFailure,
    RequestId, RequestOptions, SharedCoordinator,
};
use tokio::sync::{Notify, oneshot};

use crate::oauth::{self, TokenBody};

/// Why a request did not get a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// reauth failed it.
    Auth(FailReason),
    /// The request itself could not be sent or answered (network).
    Network,
}

/// The API's answer to one request.
#[derive(Clone, Debug)]
pub struct Answer {
    /// HTTP status (never a refresh status unless the request was one-shot).
    pub status: u16,
    /// The body.
    pub body: String,
}

type Waiter = oneshot::Sender<Result<Answer, Failure>>;

/// An HTTP client whose requests carry reauth-managed bearer tokens.
pub struct ReauthClient {
    core: SharedCoordinator,
    http: reqwest::Client,
    base: String,
    epoch: Instant,
    waiters: Mutex<HashMap<RequestId, (String, Waiter)>>,
    answers: Mutex<HashMap<RequestId, Answer>>,
    timer: Arc<Notify>,
    /// The "keychain": what the last `StoreCredentials` said.
    pub stored: Mutex<Option<Credentials>>,
    /// `Logout` commands seen, with their reasons.
    pub logouts: Mutex<Vec<LogoutReason>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ReauthClient {
    /// A logged-out client for the API at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, config: Config) -> Arc<Self> {
        let client = Arc::new(ReauthClient {
            core: SharedCoordinator::new(config).expect("valid reauth config"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            base: base.trim_end_matches('/').to_owned(),
            epoch: Instant::now(),
            waiters: Mutex::new(HashMap::new()),
            answers: Mutex::new(HashMap::new()),
            timer: Arc::new(Notify::new()),
            stored: Mutex::new(None),
            logouts: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&client);
        tokio::spawn(async move {
            // The timer task: lives as long as the client.
            while let Some(c) = weak.upgrade() {
                let wait = match c.core.poll_timeout().ok().flatten() {
                    Some(at) => Duration::from_millis(at.saturating_sub(c.now())),
                    None => Duration::from_secs(3600),
                };
                let timer = Arc::clone(&c.timer);
                drop(c); // the task must not keep the client alive
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {
                        if let Some(c) = weak.upgrade() {
                            let now = c.now();
                            if let Ok(batch) = c.core.handle_timeout(now) {
                                c.execute(batch);
                            }
                        }
                    }
                    _ = timer.notified() => {}
                }
            }
        });
        client
    }

    /// Milliseconds on this client's monotonic clock.
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The coordinator's counters.
    pub fn stats(&self) -> reauth::Stats {
        self.core.stats().unwrap_or_default()
    }

    /// Logs in with the password grant and hands the tokens to reauth.
    pub async fn login(self: &Arc<Self>) -> Result<(), String> {
        let body = oauth::password_login(&self.http, &self.base).await?;
        let credentials = credentials(body);
        *lock(&self.stored) = Some(credentials.clone());
        let batch = self
            .core
            .login(self.now(), credentials)
            .map_err(|e| e.to_string())?;
        self.execute(batch);
        Ok(())
    }

    /// `GET /api/{path}` with a fresh token; waits for the request's terminal command.
    pub async fn get(self: &Arc<Self>, path: &str) -> Result<Answer, Failure> {
        let (tx, rx) = oneshot::channel();
        let (id, batch) = {
            // Register the waiter under the same lock as the submit, so a batch that
            // completes the request at once finds it.
            let mut waiters = lock(&self.waiters);
            let (id, batch) = self
                .core
                .submit(self.now(), RequestOptions::default())
                .map_err(|_| Failure::Network)?;
            waiters.insert(id, (path.to_owned(), tx));
            (id, batch)
        };
        match batch.as_slice() {
            // The common case — the batch is exactly this request's Send: carry it out
            // on this task instead of spawning one.
            [
                Command::Send {
                    id: sent,
                    access_token,
                    ..
                },
            ] if *sent == id => {
                let token = access_token.expose().to_owned();
                Arc::clone(self).transmit(id, token).await;
            }
            _ => self.execute(batch),
        }
        rx.await.unwrap_or(Err(Failure::Network))
    }

    /// Carries out one batch, in order.
    fn execute(self: &Arc<Self>, batch: Batch) {
        for command in batch {
            match command {
                Command::Send {
                    id, access_token, ..
                }
                | Command::Replay {
                    id, access_token, ..
                } => {
                    let this = Arc::clone(self);
                    let token = access_token.expose().to_owned();
                    tokio::spawn(async move { this.transmit(id, token).await });
                }
                Command::Refresh {
                    attempt,
                    refresh_token,
                } => {
                    let this = Arc::clone(self);
                    let token = refresh_token.expose().to_owned();
                    tokio::spawn(async move { this.refresh(attempt, token).await });
                }
                Command::StoreCredentials { credentials, .. } => {
                    *lock(&self.stored) = Some(credentials)
                }
                Command::Complete { id } => {
                    let answer = lock(&self.answers).remove(&id);
                    if let Some((_, waiter)) = lock(&self.waiters).remove(&id) {
                        let _ = waiter.send(answer.ok_or(Failure::Network));
                    }
                }
                Command::Fail { id, reason } => {
                    lock(&self.answers).remove(&id);
                    let failure = match reason {
                        FailReason::Transport => Failure::Network,
                        reason => Failure::Auth(reason),
                    };
                    if let Some((_, waiter)) = lock(&self.waiters).remove(&id) {
                        let _ = waiter.send(Err(failure));
                    }
                }
                Command::Logout { reason } => {
                    *lock(&self.stored) = None;
                    lock(&self.logouts).push(reason);
                }
            }
        }
        self.timer.notify_one();
    }

    async fn transmit(self: Arc<Self>, id: RequestId, token: String) {
        let Some(path) = lock(&self.waiters).get(&id).map(|(p, _)| p.clone()) else {
            return; // cancelled meanwhile
        };
        let sent = self
            .http
            .get(format!("{}/api/{path}", self.base))
            .bearer_auth(token)
            .send()
            .await;
        let result = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                lock(&self.answers).insert(id, Answer { status, body });
                self.core.handle_response(self.now(), id, status)
            }
            // No HTTP status: the caller's failure, not an auth event (rule 17). The core
            // answers `Fail { Transport }`, which `execute` maps to `Failure::Network`.
            Err(_) => self.core.handle_transport_error(self.now(), id),
        };
        if let Ok(batch) = result {
            self.execute(batch);
        }
    }

    async fn refresh(self: Arc<Self>, attempt: AttemptId, refresh_token: String) {
        let sent = oauth::refresh(&self.http, &self.base, &refresh_token).await;
        let now = || self.now();
        let result = match sent {
            Ok(response) if response.status().is_success() => {
                match response.json::<TokenBody>().await {
                    Ok(body) => {
                        self.core
                            .handle_refresh_succeeded(now(), attempt, credentials(body))
                    }
                    // Rotated on the server, lost on the way: transient; the retry uses the
                    // same refresh token, which the server's grace window accepts.
                    Err(_) => self
                        .core
                        .handle_refresh_failed(now(), attempt, transient(None)),
                }
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|s| s * 1000);
                let body = response.text().await.unwrap_or_default();
                if (status == 400 || status == 401) && body.contains("invalid_grant") {
                    self.core
                        .handle_refresh_failed(now(), attempt, RefreshFailure::Rejected)
                } else {
                    self.core
                        .handle_refresh_failed(now(), attempt, transient(retry_after))
                }
            }
            Err(_) => self
                .core
                .handle_refresh_failed(now(), attempt, transient(None)),
        };
        if let Ok(batch) = result {
            self.execute(batch);
        }
    }
}

impl Drop for ReauthClient {
    fn drop(&mut self) {
        self.timer.notify_one(); // wakes the timer task so it sees the client is gone
    }
}

fn transient(retry_after_ms: Option<u64>) -> RefreshFailure {
    RefreshFailure::Transient { retry_after_ms }
}

fn credentials(body: TokenBody) -> Credentials {
    let mut c = Credentials::new(body.access_token);
    if let Some(r) = body.refresh_token {
        c = c.with_refresh_token(r);
    }
    if let Some(e) = body.expires_in {
        c = c.with_expires_in_ms((e * 1000.0) as u64);
    }
    c
}
