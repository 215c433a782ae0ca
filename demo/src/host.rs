//! The demo's reauth host: the `reauth-reqwest` middleware on a reqwest client — the few
//! lines any Rust app writes — plus what the demo measures (logouts, the stored
//! credentials) and a password-grant login.

use std::sync::{Arc, Mutex};

use reauth::{Config, FailReason, LogoutReason};
use reauth_reqwest::{CredentialStore, MemoryStore, Reauth, RequestFailed, StoredCredentials};
use reqwest_middleware::ClientWithMiddleware;

use crate::oauth;

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
    /// HTTP status (a refresh status only when reauth hands back a refusal).
    pub status: u16,
    /// The body.
    pub body: String,
}

/// An HTTP client whose requests carry reauth-managed bearer tokens.
pub struct ReauthClient {
    reauth: Reauth,
    api: ClientWithMiddleware,
    login_client: reqwest::Client,
    base: String,
    store: Arc<MemoryStore>,
    /// `Logout` commands seen, with their reasons.
    pub logouts: Arc<Mutex<Vec<LogoutReason>>>,
    /// Each logout's flight recording: its explanation and its transcript (JSON).
    pub recordings: Arc<Mutex<Vec<(String, String)>>>,
}

impl ReauthClient {
    /// A logged-out client for the API at `base`; call [`login`](Self::login). Must run
    /// inside a tokio runtime.
    pub fn new(base: &str, config: Config) -> Arc<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let logouts = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&logouts);
        let recordings = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&recordings);
        let store = Arc::new(MemoryStore::new());
        let reauth = Reauth::builder(format!("{base}/oauth/token"), "demo")
            .config(config)
            .store(Arc::clone(&store))
            .on_logout(move |ended| {
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(ended.reason);
                recorded
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((ended.explain(), ended.transcript_json()));
            })
            .build()
            .expect("a valid reauth config inside a tokio runtime");
        let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(reauth.clone())
            .build();
        Arc::new(ReauthClient {
            reauth,
            api,
            login_client: reqwest::Client::new(),
            base,
            store,
            logouts,
            recordings,
        })
    }

    /// Logs in with the password grant and hands the tokens to reauth.
    pub async fn login(&self) -> Result<(), String> {
        let body = oauth::password_login(&self.login_client, &self.base).await?;
        self.reauth
            .login(body.credentials())
            .map_err(|e| e.to_string())
    }

    /// `GET /api/{path}`.
    pub async fn get(&self, path: &str) -> Result<Answer, Failure> {
        let response = self
            .api
            .get(format!("{}/api/{path}", self.base))
            .send()
            .await
            .map_err(|e| match e {
                reqwest_middleware::Error::Middleware(e) => e
                    .downcast_ref::<RequestFailed>()
                    .map_or(Failure::Network, |f| Failure::Auth(f.reason)),
                reqwest_middleware::Error::Reqwest(_) => Failure::Network,
            })?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|_| Failure::Network)?;
        Ok(Answer { status, body })
    }

    /// The coordinator's counters.
    pub fn stats(&self) -> reauth::Stats {
        self.reauth.stats()
    }

    /// What the last `StoreCredentials` stored (`None` after a logout).
    pub fn stored(&self) -> Option<StoredCredentials> {
        self.store.load().ok().flatten()
    }
}
