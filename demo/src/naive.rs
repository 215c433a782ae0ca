//! The common hand-written approach, for comparison: an interceptor that refreshes on
//! every 401 it sees (no single flight, no generation check, no backoff) and retries the
//! request once; a refused refresh logs the user out. This is what axios interceptors,
//! OkHttp `Authenticator`s and `catchError` chains typically look like.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::oauth::{self, TokenBody};

#[derive(Clone, Debug, Default)]
struct Tokens {
    access: String,
    refresh: String,
}

/// Counters of what the naive client did.
#[derive(Debug, Default)]
pub struct NaiveStats {
    /// Refresh calls made.
    pub refresh_calls: AtomicU64,
    /// Retries after a refresh.
    pub replays: AtomicU64,
    /// Logouts (a refresh was refused).
    pub logouts: AtomicU64,
    /// Requests that failed because the refresh failed or the retry was refused.
    pub failed_auth: AtomicU64,
    /// Requests that failed on the network.
    pub failed_network: AtomicU64,
}

/// The naive client.
pub struct NaiveClient {
    http: reqwest::Client,
    base: String,
    tokens: Mutex<Tokens>,
    /// What it did.
    pub stats: NaiveStats,
}

impl NaiveClient {
    /// A client for the API at `base`.
    pub fn new(base: &str) -> Arc<Self> {
        Arc::new(NaiveClient {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            base: base.trim_end_matches('/').to_owned(),
            tokens: Mutex::new(Tokens::default()),
            stats: NaiveStats::default(),
        })
    }

    fn tokens(&self) -> Tokens {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, t: Tokens) {
        *self.tokens.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    /// Logs in with the password grant.
    pub async fn login(&self) -> Result<(), String> {
        let body = oauth::password_login(&self.http, &self.base).await?;
        self.set(Tokens {
            access: body.access_token,
            refresh: body.refresh_token.unwrap_or_default(),
        });
        Ok(())
    }

    async fn call(&self, path: &str, access: &str) -> Result<u16, ()> {
        match self
            .http
            .get(format!("{}/api/{path}", self.base))
            .bearer_auth(access)
            .send()
            .await
        {
            Ok(r) => Ok(r.status().as_u16()),
            Err(_) => Err(()),
        }
    }

    /// `GET /api/{path}`: on 401, refresh and retry once. Returns whether it got a 200.
    pub async fn get(&self, path: &str) -> bool {
        let tokens = self.tokens();
        match self.call(path, &tokens.access).await {
            Ok(401) => {}
            Ok(status) => return status == 200,
            Err(()) => {
                self.stats.failed_network.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        // Refresh with whatever refresh token is current now — every 401 does this.
        let refresh = self.tokens().refresh;
        self.stats.refresh_calls.fetch_add(1, Ordering::Relaxed);
        let answer = oauth::refresh(&self.http, &self.base, &refresh).await;
        let fresh = match answer {
            Ok(r) if r.status().is_success() => r.json::<TokenBody>().await.ok(),
            Ok(r) if r.status().as_u16() == 400 => {
                // invalid_grant: log out, and log in again so the demo can continue.
                self.stats.logouts.fetch_add(1, Ordering::Relaxed);
                self.stats.failed_auth.fetch_add(1, Ordering::Relaxed);
                let _ = self.login().await;
                return false;
            }
            _ => None,
        };
        let Some(fresh) = fresh else {
            self.stats.failed_auth.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let access = fresh.access_token.clone();
        self.set(Tokens {
            access: fresh.access_token,
            refresh: fresh.refresh_token.unwrap_or(refresh),
        });
        self.stats.replays.fetch_add(1, Ordering::Relaxed);
        match self.call(path, &access).await {
            Ok(200) => true,
            Ok(_) => {
                self.stats.failed_auth.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(()) => {
                self.stats.failed_network.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}
