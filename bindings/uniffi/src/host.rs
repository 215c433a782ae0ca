//! The host's half of the contract (crate `reauth-host`) for every UniFFI language: the
//! refresh request, the token response read within a limit, RFC 6750 challenges, default
//! route keys and the credential-store recipe (`docs/contract.md` §12). The adapters
//! (httpx, OkHttp, URLSession) call these instead of keeping their own copies.
//!
//! Wall-clock times cross as milliseconds since the Unix epoch (`wall_now_ms`,
//! `expires_at_ms`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reauth_host as host;

use crate::{Credentials, ReauthError, Token, signed, time, token};

fn wall(ms: i64) -> Result<SystemTime, ReauthError> {
    let invalid = || ReauthError::InvalidTime(ms);
    let unsigned = u64::try_from(ms).map_err(|_| invalid())?;
    UNIX_EPOCH
        .checked_add(Duration::from_millis(unsigned))
        .ok_or_else(invalid)
}

fn wall_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The largest token response an adapter reads, in bytes; it reads at most one byte more
/// and hands that to [`read_token_response`], which refuses it as too large.
#[uniffi::export]
pub fn max_token_response_bytes() -> i64 {
    signed(host::MAX_TOKEN_RESPONSE_BYTES as u64)
}

/// One header of a [`TokenRequest`]. Its value may hold a secret (`Authorization`).
#[derive(uniffi::Record)]
pub struct Header {
    /// The header's name.
    pub name: String,
    /// Its value.
    pub value: Arc<Token>,
}

/// A refresh call: `POST url` with these headers and this form-encoded body (it holds
/// the refresh token).
#[derive(uniffi::Record)]
pub struct TokenRequest {
    /// The token endpoint.
    pub url: String,
    /// Headers to set.
    pub headers: Vec<Header>,
    /// The body.
    pub body: Arc<Token>,
}

/// A token endpoint: where and as whom refresh tokens are presented (RFC 6749 §6,
/// client authentication §2.3.1).
#[derive(uniffi::Object)]
pub struct TokenEndpoint(host::TokenEndpoint);

#[uniffi::export]
impl TokenEndpoint {
    /// The endpoint at `url` for `client_id`; `client_secret` for a confidential client,
    /// sent in the body, or with HTTP Basic when `basic_auth` is true.
    #[uniffi::constructor(default(client_secret = None, basic_auth = false))]
    pub fn new(
        url: String,
        client_id: String,
        client_secret: Option<String>,
        basic_auth: bool,
    ) -> Arc<Self> {
        let mut e = host::TokenEndpoint::new(url, client_id);
        if let Some(s) = client_secret {
            e = e.with_client_secret(s);
        }
        if basic_auth {
            e = e.with_auth(host::ClientAuth::Basic);
        }
        Arc::new(TokenEndpoint(e))
    }

    /// The refresh call for `refresh_token`.
    pub fn refresh_request(&self, refresh_token: Arc<Token>) -> TokenRequest {
        let r = self.0.refresh_request(&refresh_token.0);
        TokenRequest {
            url: r.url,
            headers: r
                .headers
                .iter()
                .map(|(name, value)| Header {
                    name: (*name).to_owned(),
                    value: token(value),
                })
                .collect(),
            body: token(&r.body),
        }
    }
}

/// What a token-endpoint answer comes to (`docs/contract.md` §12.3).
#[derive(uniffi::Enum)]
pub enum TokenAnswer {
    /// Report `handle_refresh_succeeded` with these; log `note` if set.
    Succeeded {
        /// What to report (the refresh token is the one sent when the answer had none).
        credentials: Arc<Credentials>,
        /// A problem the answer was used despite (safe to log).
        note: Option<String>,
    },
    /// Report `handle_refresh_failed(Rejected)`: the session ends.
    Rejected {
        /// The OAuth error code (safe to log).
        error: String,
    },
    /// Report `handle_refresh_failed(Transient { retry_after_ms })`; if
    /// `rotated_refresh_token` is set, keep it first ([`keep_rotation`]).
    Transient {
        /// The server's `Retry-After` in ms.
        retry_after_ms: Option<i64>,
        /// Why (safe to log).
        problem: String,
        /// A rotated refresh token that this unusable answer carried.
        rotated_refresh_token: Option<Arc<Token>>,
    },
}

fn answer(a: host::TokenAnswer) -> TokenAnswer {
    match a {
        host::TokenAnswer::Succeeded { credentials, note } => TokenAnswer::Succeeded {
            credentials: Arc::new(Credentials(credentials)),
            note: note.map(|n| n.to_string()),
        },
        host::TokenAnswer::Rejected { error } => TokenAnswer::Rejected { error },
        host::TokenAnswer::Transient {
            retry_after_ms,
            problem,
            rotated_refresh_token,
        } => TokenAnswer::Transient {
            retry_after_ms: retry_after_ms.map(signed),
            problem: problem.to_string(),
            rotated_refresh_token: rotated_refresh_token.as_ref().map(token),
        },
    }
}

/// Reads a token-endpoint answer (RFC 6749 §5.1, §5.2): its status, `Retry-After` header,
/// body (at most [`max_token_response_bytes`] + 1 bytes read) and the refresh token that
/// was sent. `wall_now_ms` dates a `Retry-After` HTTP-date.
#[uniffi::export]
pub fn read_token_response(
    status: i32,
    retry_after: Option<String>,
    body: Vec<u8>,
    sent_refresh_token: Arc<Token>,
    wall_now_ms: i64,
) -> Result<TokenAnswer, ReauthError> {
    let status = u16::try_from(status).map_err(|_| ReauthError::InvalidStatus(status))?;
    let body = zeroize::Zeroizing::new(body);
    Ok(answer(host::read_token_response(
        status,
        retry_after.as_deref(),
        &body,
        &sent_refresh_token.0,
        wall(wall_now_ms)?,
    )))
}

/// The error of an RFC 6750 Bearer challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum BearerError {
    /// `invalid_token`: a refresh may help.
    InvalidToken,
    /// `insufficient_scope`: the caller's answer, never a refresh (§12.4).
    InsufficientScope,
    /// `invalid_request`.
    InvalidRequest,
    /// Another code.
    Other,
}

/// The error of the Bearer challenge among a response's `WWW-Authenticate` values.
#[uniffi::export]
pub fn bearer_error(www_authenticate: Vec<String>) -> Option<BearerError> {
    host::bearer_error(www_authenticate.iter().map(String::as_str)).map(|e| match e {
        host::BearerError::InvalidToken => BearerError::InvalidToken,
        host::BearerError::InsufficientScope => BearerError::InsufficientScope,
        host::BearerError::InvalidRequest => BearerError::InvalidRequest,
        host::BearerError::Other => BearerError::Other,
    })
}

/// Whether a refusal with these `WWW-Authenticate` values is the caller's answer (an
/// `insufficient_scope` challenge): end the request with it — `cancel`, then hand the
/// response over — instead of reporting a refresh status (§12.4).
#[uniffi::export]
pub fn is_callers_answer(www_authenticate: Vec<String>) -> bool {
    host::bearer_error(www_authenticate.iter().map(String::as_str))
        .is_some_and(host::BearerError::is_callers_answer)
}

/// The default route key of a request (method, origin, path — never the query), for
/// `RequestOptions.route` (rule 7.20, §12.4).
#[uniffi::export]
pub fn default_route(
    method: String,
    scheme: String,
    host_name: String,
    port: Option<i32>,
    path: String,
) -> i64 {
    let port = port.and_then(|p| u16::try_from(p).ok());
    i64::from(host::default_route(&method, &scheme, &host_name, port, &path).get())
}

/// Credentials as a store keeps them, the expiry as wall-clock ms since the epoch
/// (§12.1). (Not `StoredCredentials`: the Swift adapter, in the same module, has a type of
/// that name with a `Date`.)
#[derive(uniffi::Record)]
pub struct StoreRecord {
    /// The access token.
    pub access_token: Arc<Token>,
    /// The refresh token, if any.
    pub refresh_token: Option<Arc<Token>>,
    /// When the access token expires (ms since the epoch); `None` if never stated.
    pub expires_at_ms: Option<i64>,
}

fn to_host(s: &StoreRecord) -> Result<host::StoredCredentials, ReauthError> {
    Ok(host::StoredCredentials {
        access_token: s.access_token.0.clone(),
        refresh_token: s.refresh_token.as_ref().map(|t| t.0.clone()),
        expires_at: s.expires_at_ms.map(|ms| wall(ms.max(0))).transpose()?,
    })
}

fn from_host(s: &host::StoredCredentials) -> StoreRecord {
    StoreRecord {
        access_token: token(&s.access_token),
        refresh_token: s.refresh_token.as_ref().map(token),
        expires_at_ms: s.expires_at.map(wall_ms),
    }
}

/// What to store for credentials the app logs in with at `wall_now_ms` — after the
/// coordinator accepted them (`login` first, then store: refused credentials are never
/// written).
#[uniffi::export]
pub fn stored_from_login(
    credentials: Arc<Credentials>,
    wall_now_ms: i64,
) -> Result<StoreRecord, ReauthError> {
    Ok(from_host(&host::StoredCredentials::from_login(
        &credentials.0,
        wall(wall_now_ms)?,
    )))
}

/// What to store for a `StoreCredentials` command produced by an input at `now`:
/// the expiry carried to the wall clock (§12.1). `None` for any other command.
#[uniffi::export]
pub fn stored_from_command(
    command: &crate::Command,
    now: i64,
    wall_now_ms: i64,
) -> Result<Option<StoreRecord>, ReauthError> {
    let crate::Command::StoreCredentials {
        access_token,
        refresh_token,
        expires_at,
        ..
    } = command
    else {
        return Ok(None);
    };
    let mut c = reauth::Credentials::new(access_token.0.clone());
    c.refresh_token = refresh_token.as_ref().map(|t| t.0.clone());
    let at = expires_at.map(time).transpose()?;
    Ok(Some(from_host(&host::StoredCredentials::from_command(
        &c,
        at,
        time(now)?,
        wall(wall_now_ms)?,
    ))))
}

/// Credentials to log in (or report an adopted refresh) with: the lifetime left at
/// `wall_now_ms`, 0 once passed (§12.1).
#[uniffi::export]
pub fn stored_to_credentials(
    stored: StoreRecord,
    wall_now_ms: i64,
) -> Result<Arc<Credentials>, ReauthError> {
    Ok(Arc::new(Credentials(
        to_host(&stored)?.to_credentials(wall(wall_now_ms)?),
    )))
}

/// What to do for `Refresh { refresh_token }` (§12.2, §12.3).
#[derive(uniffi::Enum)]
pub enum RefreshPlan {
    /// Report these credentials as the attempt's success without calling the server.
    Adopt {
        /// A sibling's rotation, with the lifetime left.
        credentials: Arc<Credentials>,
    },
    /// Call the token endpoint with this refresh token.
    Call {
        /// The store's newer one, or the command's.
        refresh_token: Arc<Token>,
    },
}

fn plan(p: host::RefreshPlan) -> RefreshPlan {
    match p {
        host::RefreshPlan::Adopt(c) => RefreshPlan::Adopt {
            credentials: Arc::new(Credentials(c)),
        },
        host::RefreshPlan::Call(t) => RefreshPlan::Call {
            refresh_token: token(&t),
        },
    }
}

/// §12.2/§12.3: under the store's lock, what to do for `Refresh { refresh_token }` given
/// what the store holds.
#[uniffi::export]
pub fn plan_refresh(
    refresh_token: Arc<Token>,
    stored: Option<StoreRecord>,
    wall_now_ms: i64,
) -> Result<RefreshPlan, ReauthError> {
    let stored = stored.as_ref().map(to_host).transpose()?;
    Ok(plan(host::plan_refresh(
        &refresh_token.0,
        stored.as_ref(),
        wall(wall_now_ms)?,
    )))
}

/// §12.2: after the server rejected `sent`, re-read the store: `Some(plan)` follows a
/// sibling's newer token once; `None` reports the rejection.
#[uniffi::export]
pub fn after_rejection(
    sent: Arc<Token>,
    stored: Option<StoreRecord>,
    wall_now_ms: i64,
) -> Result<Option<RefreshPlan>, ReauthError> {
    let stored = stored.as_ref().map(to_host).transpose()?;
    Ok(host::after_rejection(&sent.0, stored.as_ref(), wall(wall_now_ms)?).map(plan))
}

/// §12.3: what to store to keep a refresh token rotated by an unusable answer (`None`
/// when nothing is stored to keep it with).
#[uniffi::export]
pub fn keep_rotation(
    stored: Option<StoreRecord>,
    rotated: Arc<Token>,
) -> Result<Option<StoreRecord>, ReauthError> {
    let stored = stored.as_ref().map(to_host).transpose()?;
    Ok(host::keep_rotation(stored.as_ref(), &rotated.0)
        .as_ref()
        .map(from_host))
}
