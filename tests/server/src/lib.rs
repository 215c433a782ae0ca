//! A reference OAuth 2.0 token server for reauth's demo and end-to-end tests.
//!
//! - `POST /oauth/token` (RFC 6749): `grant_type=password` or `client_credentials` logs
//!   in (a new token family); `grant_type=refresh_token` refreshes. Answers
//!   `{access_token, token_type, expires_in, refresh_token}` with `expires_in` an integer
//!   number of seconds (RFC 6749 §5.1, A.14: the lifetime rounded down, at least 1);
//!   refusals are RFC 6749 §5.2 JSON (`invalid_grant`, …) with status 400, and only
//!   those: a 503 or 429 carries no OAuth error code, just `Retry-After`.
//! - **Rotation with reuse detection** (RFC 9700 §4.14.2): every refresh issues a new
//!   refresh token; presenting an already-used one revokes the whole family. The token
//!   rotated last is accepted again for `reuse_grace_ms` and returns the same pair (the
//!   leeway real servers give a client whose response was lost), with `expires_in` the
//!   access token's remaining lifetime. The grace window never hands out a dead access
//!   token: if the family's current one was revoked or has expired, the replay gets a fresh
//!   access token with the same refresh token.
//! - `GET|POST /api/…`: 200 for a live access token, otherwise 401 with
//!   `WWW-Authenticate: Bearer error="invalid_token"`; a request without credentials gets
//!   `Bearer realm="reauth"` and no error code (RFC 6750 §3.1).
//! - `GET|POST /api/scoped` and `/api/scoped/…`: an endpoint no token has the scope for.
//! - `GET|POST /api/forbidden` and `/api/forbidden/…`: an endpoint that refuses every
//!   live token with a bare 403 (no challenge) — the refusing endpoint of contract rule 20
//!   for a client whose refresh statuses include 403.
//!   A live access token gets 403 with
//!   `WWW-Authenticate: Bearer realm="reauth", error="insufficient_scope", scope="admin"`
//!   (RFC 6750 §3.1) — a refusal a refresh cannot cure; a dead or missing token gets the
//!   401s of every other `/api` route.
//! - Fault injection on the token endpoint: refresh latency; 503 and 429 (with a
//!   `Retry-After` of 1–3 s); a **dropped connection** (closed before any response, the
//!   refresh not processed); a **lost response** (the server rotates, sends the status
//!   line and headers, then the body breaks off). Also forced revocation of access tokens
//!   or of whole families, and `reuse_grace_ms = 0` for a strict server.
//! - `GET /admin/stats`, `POST /admin/config`, `POST /admin/reset`,
//!   `POST /admin/revoke-access`, `POST /admin/revoke`. The fault rates must be finite and
//!   within `0.0..=1.0` ([`ServerConfig::validate`]): `POST /admin/config` answers 400
//!   with `{"error": "invalid_config", "field", "error_description"}` otherwise and keeps
//!   the config, [`Server::start`] and [`Server::configure`] return an error.
//! - **CORS for one origin**, off by default ([`Server::start_with_cors`], `--cors-origin
//!   ORIGIN`), so a page of another origin (a browser test) can call it: every response
//!   carries `Access-Control-Allow-Origin: ORIGIN`, `Access-Control-Expose-Headers:
//!   WWW-Authenticate, Retry-After` and `Vary: Origin`, and an `OPTIONS` request (a
//!   preflight) to any path answers 204 with `Access-Control-Allow-Methods: GET, POST`,
//!   `Access-Control-Allow-Headers: Authorization, Content-Type` and
//!   `Access-Control-Max-Age: 600`. Without it, no CORS header is sent and `OPTIONS` gets
//!   the router's 405 or 404.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Form, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// Behaviour and fault knobs. All can be changed while running (`POST /admin/config`
/// with any subset of the fields, or [`Server::configure`]).
///
/// The four rates are probabilities, each a finite number within `0.0..=1.0` (see
/// [`ServerConfig::validate`]). Each is drawn on its own, in this order: dropped
/// connection, 503, 429, then lost response for a refresh that succeeded; so a rate is the
/// share of the calls the earlier draws let through, and the rates need not sum to 1 or
/// less.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Lifetime of access tokens, in milliseconds.
    pub access_ttl_ms: u64,
    /// Delay before the token endpoint answers a refresh, in milliseconds.
    pub refresh_latency_ms: u64,
    /// Share of refresh calls answered 503.
    pub token_5xx_rate: f64,
    /// Share of refresh calls answered 429 (with a `Retry-After` of 1–3 s).
    pub token_429_rate: f64,
    /// Share of refresh calls whose connection is closed before any response (nothing
    /// rotated).
    pub dropped_connection_rate: f64,
    /// Share of successful refreshes whose response is lost after the status line: the
    /// server has rotated, the client sees a truncated body.
    pub lost_response_rate: f64,
    /// How long the refresh token rotated last is still accepted (same pair returned).
    pub reuse_grace_ms: u64,
    /// Seed of the fault dice, for reproducible runs.
    pub seed: u64,
}

/// A [`ServerConfig`] refused by [`ServerConfig::validate`]: a fault rate that is not a
/// finite number within `0.0..=1.0`, or a duration outside its range.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    field: &'static str,
    value: String,
    expected: &'static str,
}

impl ConfigError {
    /// The refused field, named as in [`ServerConfig`] and `POST /admin/config`.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The refused value, as given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What the field accepts.
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must be {}, got {}",
            self.field, self.expected, self.value
        )
    }
}

impl std::error::Error for ConfigError {}

/// The longest access-token lifetime and token-endpoint delay: one year, in milliseconds
/// (a longer one would overflow the server's clock arithmetic, and no test needs it).
pub const MAX_DURATION_MS: u64 = 365 * 24 * 3600 * 1000;

impl ServerConfig {
    /// Checks the fault rates — each a finite number within `0.0..=1.0` (NaN, infinities
    /// and negative numbers are refused) — and the durations: `access_ttl_ms` within
    /// `1..=MAX_DURATION_MS`, `refresh_latency_ms` and `reuse_grace_ms` at most
    /// [`MAX_DURATION_MS`].
    ///
    /// # Errors
    ///
    /// The first field out of range, in the order of the fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        const DURATION: &str = "a number of milliseconds within 0..=31536000000 (one year)";
        for (field, value, min, expected) in [
            (
                "access_ttl_ms",
                self.access_ttl_ms,
                1,
                "a number of milliseconds within 1..=31536000000 (one year)",
            ),
            ("refresh_latency_ms", self.refresh_latency_ms, 0, DURATION),
        ] {
            if !(min..=MAX_DURATION_MS).contains(&value) {
                return Err(ConfigError {
                    field,
                    value: value.to_string(),
                    expected,
                });
            }
        }
        for (field, value) in [
            ("token_5xx_rate", self.token_5xx_rate),
            ("token_429_rate", self.token_429_rate),
            ("dropped_connection_rate", self.dropped_connection_rate),
            ("lost_response_rate", self.lost_response_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError {
                    field,
                    value: value.to_string(),
                    expected: "a finite number within 0.0..=1.0",
                });
            }
        }
        if self.reuse_grace_ms > MAX_DURATION_MS {
            return Err(ConfigError {
                field: "reuse_grace_ms",
                value: self.reuse_grace_ms.to_string(),
                expected: DURATION,
            });
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            access_ttl_ms: 60_000,
            refresh_latency_ms: 0,
            token_5xx_rate: 0.0,
            token_429_rate: 0.0,
            dropped_connection_rate: 0.0,
            lost_response_rate: 0.0,
            reuse_grace_ms: 2_000,
            seed: 1,
        }
    }
}

/// Counters, so tests can assert exact numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStats {
    /// Access tokens issued: logins, rotations, and grace replays that found the family's
    /// access token revoked or expired.
    pub tokens_issued: u64,
    /// Password / client-credentials logins.
    pub logins: u64,
    /// Calls with `grant_type=refresh_token`, faults included.
    pub refresh_calls: u64,
    /// Refreshes that rotated the family to a new pair.
    pub rotations: u64,
    /// Refreshes answered from the grace window (the pair rotated last, again; with a fresh
    /// access token if the current one was revoked or expired).
    pub grace_replays: u64,
    /// Refreshes refused with `invalid_grant` (unknown, revoked or reused token).
    pub refresh_rejections: u64,
    /// Reuse detections (each revoked a family).
    pub reuse_detections: u64,
    /// Refresh calls answered 503.
    pub token_5xx: u64,
    /// Refresh calls answered 429.
    pub token_429: u64,
    /// Refresh calls whose connection was closed before any response.
    pub dropped_connections: u64,
    /// Refresh responses dropped after rotating.
    pub lost_responses: u64,
    /// 401s sent by the API.
    pub unauthorized: u64,
    /// API requests served with 200.
    pub served: u64,
    /// Requests with a live access token refused 403 `insufficient_scope`
    /// (`/api/scoped/…`).
    pub scope_refusals: u64,
    /// Requests with a live access token refused with a bare 403 (`/api/forbidden/…`).
    pub forbidden: u64,
    /// Families revoked (reuse detection or `/admin/revoke`).
    pub families_revoked: u64,
}

#[derive(Clone, Debug)]
struct Pair {
    access: String,
    refresh: String,
}

/// What a successful refresh hands out: a pair and how long its access token lives from
/// now (the full lifetime, or what is left of it on a grace replay).
#[derive(Debug)]
struct Grant {
    pair: Pair,
    lifetime: Duration,
}

#[derive(Debug)]
struct Family {
    current: Pair,
    /// The refresh token rotated last and when.
    previous: Option<(String, Instant)>,
    used: HashSet<String>,
    revoked: bool,
}

#[derive(Debug)]
struct Access {
    family: u64,
    expires_at: Instant,
}

struct Inner {
    config: ServerConfig,
    rng: StdRng,
    next: u64,
    families: HashMap<u64, Family>,
    refresh_family: HashMap<String, u64>,
    access: HashMap<String, Access>,
    stats: ServerStats,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    // A panicking handler cannot leave the maps half-updated in a way that matters to a
    // test server; keep serving.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Inner {
    fn new(config: ServerConfig) -> Self {
        Inner {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            next: 0,
            families: HashMap::new(),
            refresh_family: HashMap::new(),
            access: HashMap::new(),
            stats: ServerStats::default(),
        }
    }

    fn ttl(&self) -> Duration {
        Duration::from_millis(self.config.access_ttl_ms)
    }

    /// A new access token for `family`, live for the configured lifetime.
    fn issue_access(&mut self, family: u64) -> String {
        self.next += 1;
        let access = format!("at-{family}-{}", self.next);
        let expires_at = Instant::now() + self.ttl();
        self.access
            .insert(access.clone(), Access { family, expires_at });
        self.stats.tokens_issued += 1;
        access
    }

    fn issue(&mut self, family: u64) -> Pair {
        let access = self.issue_access(family);
        let refresh = format!("rt-{family}-{}", self.next);
        self.refresh_family.insert(refresh.clone(), family);
        Pair { access, refresh }
    }

    fn login(&mut self) -> Pair {
        self.next += 1;
        let family = self.next;
        let pair = self.issue(family);
        self.families.insert(
            family,
            Family {
                current: pair.clone(),
                previous: None,
                used: HashSet::new(),
                revoked: false,
            },
        );
        self.stats.logins += 1;
        pair
    }

    fn revoke(&mut self, family: u64) {
        if let Some(f) = self.families.get_mut(&family)
            && !f.revoked
        {
            f.revoked = true;
            self.stats.families_revoked += 1;
        }
    }

    fn revoke_all(&mut self) {
        let families: Vec<u64> = self.families.keys().copied().collect();
        for f in families {
            self.revoke(f);
        }
    }

    fn refresh(&mut self, token: &str) -> Result<Grant, &'static str> {
        let Some(&family) = self.refresh_family.get(token) else {
            self.stats.refresh_rejections += 1;
            return Err("unknown refresh token");
        };
        let grace = Duration::from_millis(self.config.reuse_grace_ms);
        let f = self
            .families
            .get(&family)
            .expect("every refresh token has a family");
        if f.revoked {
            self.stats.refresh_rejections += 1;
            return Err("token family revoked");
        }
        if f.current.refresh == token {
            let pair = self.issue(family);
            let f = self.families.get_mut(&family).expect("family exists");
            f.used.insert(token.to_owned());
            f.previous = Some((token.to_owned(), Instant::now()));
            f.current = pair.clone();
            self.stats.rotations += 1;
            return Ok(Grant {
                pair,
                lifetime: self.ttl(),
            });
        }
        if let Some((previous, at)) = &f.previous
            && previous == token
            && at.elapsed() <= grace
        {
            self.stats.grace_replays += 1;
            let now = Instant::now();
            let expires_at = self
                .access
                .get(&f.current.access)
                .map(|a| a.expires_at)
                .filter(|&expires_at| expires_at > now);
            if let Some(expires_at) = expires_at {
                return Ok(Grant {
                    pair: f.current.clone(),
                    lifetime: expires_at - now,
                });
            }
            // The current access token was revoked or has expired: never hand out a dead
            // one. A fresh access token; the refresh token rotated last stays the same.
            let refresh = f.current.refresh.clone();
            let access = self.issue_access(family);
            if let Some(f) = self.families.get_mut(&family) {
                f.current.access.clone_from(&access);
            }
            return Ok(Grant {
                pair: Pair { access, refresh },
                lifetime: self.ttl(),
            });
        }
        // An already-used refresh token: someone replayed it. Revoke the family.
        self.stats.reuse_detections += 1;
        self.stats.refresh_rejections += 1;
        self.revoke(family);
        Err("refresh token reuse detected; token family revoked")
    }

    /// Whether the request carries a live access token (not expired, not revoked, of a
    /// family not revoked).
    fn live(&self, headers: &HeaderMap) -> bool {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        token.and_then(|t| self.access.get(t)).is_some_and(|a| {
            a.expires_at > Instant::now()
                && self.families.get(&a.family).is_some_and(|f| !f.revoked)
        })
    }
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    /// Whole seconds (RFC 6749 A.14): the lifetime rounded down, so a client never
    /// believes a token lives longer than it does, and at least 1.
    expires_in: u64,
    refresh_token: String,
}

fn token_json(pair: &Pair, lifetime: Duration) -> TokenResponse {
    TokenResponse {
        access_token: pair.access.clone(),
        token_type: "Bearer",
        expires_in: lifetime.as_secs().max(1),
        refresh_token: pair.refresh.clone(),
    }
}

/// A transient refusal of the token endpoint: no OAuth error code (RFC 6749 §5.2 has none
/// for these), a plain body and a `Retry-After` in seconds.
fn unavailable(status: StatusCode, retry_after_s: u64) -> Response {
    let mut r = (status, status.canonical_reason().unwrap_or("unavailable")).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    r
}

/// Unwinds the connection's task without a response: the client sees the connection
/// close before a status line. `resume_unwind` skips the panic hook, so nothing is
/// printed.
struct DropConnection;

fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new(DropConnection))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(
    State(shared): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match form.get("grant_type").map(String::as_str) {
        Some("password" | "client_credentials") => {
            let mut s = lock(&shared);
            let pair = s.login();
            Json(token_json(&pair, s.ttl())).into_response()
        }
        Some("refresh_token") => {
            let Some(refresh) = form.get("refresh_token").cloned() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is missing",
                );
            };
            let latency = {
                let mut s = lock(&shared);
                s.stats.refresh_calls += 1;
                s.config.refresh_latency_ms
            };
            if latency > 0 {
                tokio::time::sleep(Duration::from_millis(latency)).await;
            }
            let mut s = lock(&shared);
            // Every way in validates the rates (ServerConfig::validate): probabilities
            // random_bool accepts.
            let (p5xx, p429, pdrop, plost) = (
                s.config.token_5xx_rate,
                s.config.token_429_rate,
                s.config.dropped_connection_rate,
                s.config.lost_response_rate,
            );
            if s.rng.random_bool(pdrop) {
                s.stats.dropped_connections += 1;
                drop(s);
                drop_connection();
            }
            if s.rng.random_bool(p5xx) {
                s.stats.token_5xx += 1;
                let retry = s.rng.random_range(1..=3);
                return unavailable(StatusCode::SERVICE_UNAVAILABLE, retry);
            }
            if s.rng.random_bool(p429) {
                s.stats.token_429 += 1;
                let retry = s.rng.random_range(1..=3);
                return unavailable(StatusCode::TOO_MANY_REQUESTS, retry);
            }
            match s.refresh(&refresh) {
                Ok(Grant { pair, lifetime }) => {
                    if s.rng.random_bool(plost) {
                        s.stats.lost_responses += 1;
                        // Rotated; the status line and headers go out, then the body
                        // breaks off after its first bytes.
                        // (The pause lets the head and the first bytes reach the wire.)
                        use futures_util::StreamExt as _;
                        let head = futures_util::stream::once(async {
                            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(
                                b"{\"access_token\":",
                            ))
                        });
                        let broken = futures_util::stream::once(async {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Err(std::io::Error::other("injected lost response"))
                        });
                        let stream = head.chain(broken);
                        return Response::builder()
                            .status(StatusCode::OK)
                            .header(header::CONTENT_TYPE, "application/json")
                            .body(Body::from_stream(stream))
                            .expect("static response parts are valid");
                    }
                    Json(token_json(&pair, lifetime)).into_response()
                }
                Err(why) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why),
            }
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "use password, client_credentials or refresh_token",
        ),
    }
}

/// Whether an `/api/{*path}` path is under `/api/scoped`, the endpoint no token has the
/// scope for.
fn scoped(path: &str) -> bool {
    path == "scoped" || path.starts_with("scoped/")
}

/// Whether an `/api/{*path}` path is under `/api/forbidden`, which refuses every token.
fn forbidden(path: &str) -> bool {
    path == "forbidden" || path.starts_with("forbidden/")
}

async fn api(
    State(shared): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    {
        let mut s = lock(&shared);
        if s.live(&headers) {
            if scoped(&path) {
                s.stats.scope_refusals += 1;
                drop(s);
                // RFC 6750 §3.1: the token is fine, its scope is not; refreshing won't help.
                let mut r = (StatusCode::FORBIDDEN, "").into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        r#"Bearer realm="reauth", error="insufficient_scope", scope="admin""#,
                    ),
                );
                return r;
            }
            if forbidden(&path) {
                s.stats.forbidden += 1;
                return (StatusCode::FORBIDDEN, "forbidden").into_response();
            }
            s.stats.served += 1;
            drop(s);
            return Json(serde_json::json!({"ok": true, "path": path})).into_response();
        }
        s.stats.unauthorized += 1;
    }
    // RFC 6750 §3.1: a request without credentials gets no error code.
    let challenge = if headers.contains_key(header::AUTHORIZATION) {
        r#"Bearer realm="reauth", error="invalid_token", error_description="expired or revoked""#
    } else {
        r#"Bearer realm="reauth""#
    };
    let mut r = (StatusCode::UNAUTHORIZED, "").into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    r
}

async fn stats(State(shared): State<Shared>) -> Json<ServerStats> {
    Json(lock(&shared).stats.clone())
}

async fn configure(State(shared): State<Shared>, Json(patch): Json<serde_json::Value>) -> Response {
    let mut s = lock(&shared);
    let mut current = serde_json::to_value(&s.config).expect("config serializes");
    if let (Some(target), Some(fields)) = (current.as_object_mut(), patch.as_object()) {
        for (k, v) in fields {
            target.insert(k.clone(), v.clone());
        }
    }
    let refused = |field: Option<&str>, description: String| {
        (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({
                "error": "invalid_config",
                "field": field,
                "error_description": description,
            })),
        )
            .into_response()
    };
    match serde_json::from_value::<ServerConfig>(current) {
        Ok(config) => match config.validate() {
            Ok(()) => {
                s.config = config.clone();
                Json(config).into_response()
            }
            Err(e) => refused(Some(e.field()), e.to_string()),
        },
        Err(e) => refused(None, e.to_string()),
    }
}

/// Forgets every token and counter and reseeds the dice: the state of a fresh start, with
/// the current config.
async fn reset(State(shared): State<Shared>) -> StatusCode {
    let mut s = lock(&shared);
    let config = s.config.clone();
    *s = Inner::new(config);
    StatusCode::NO_CONTENT
}

async fn revoke_access(State(shared): State<Shared>) -> StatusCode {
    lock(&shared).access.clear();
    StatusCode::NO_CONTENT
}

async fn revoke_families(State(shared): State<Shared>) -> StatusCode {
    lock(&shared).revoke_all();
    StatusCode::NO_CONTENT
}

/// The router, for embedding; with CORS for `cors_origin` if given.
fn router(shared: Shared, cors_origin: Option<HeaderValue>) -> Router {
    let app = Router::new()
        .route("/oauth/token", post(token))
        .route("/api/{*path}", get(api).post(api))
        .route("/admin/stats", get(stats))
        .route("/admin/config", post(configure))
        .route("/admin/reset", post(reset))
        .route("/admin/revoke-access", post(revoke_access))
        .route("/admin/revoke", post(revoke_families))
        .with_state(shared);
    match cors_origin {
        // A layer of the whole router: the fallback's 404s carry the headers too, and an
        // OPTIONS is answered before routing, whatever the path.
        Some(origin) => app.layer(axum::middleware::from_fn_with_state(origin, cors)),
        None => app,
    }
}

/// CORS for one origin: a preflight (any `OPTIONS`) is answered here with 204; every
/// response, the handlers' included, names the origin and exposes the headers a client
/// reads (the challenge, `Retry-After`).
async fn cors(State(origin): State<HeaderValue>, request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(600u32));
        r
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate, Retry-After"),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

/// Checks a CORS origin (`--cors-origin`, [`Server::start_with_cors`]): a non-empty
/// header value of visible ASCII, without a comma (one origin, such as
/// `http://127.0.0.1:8080`). Returns it as the header value.
///
/// # Errors
///
/// A description of what is wrong with `origin`.
pub fn cors_origin(origin: &str) -> Result<HeaderValue, String> {
    if origin.is_empty() || origin.contains(',') {
        return Err("one origin, such as http://127.0.0.1:8080".to_owned());
    }
    HeaderValue::from_str(origin)
        .ok()
        .filter(|v| v.to_str().is_ok())
        .ok_or_else(|| "an origin in visible ASCII, such as http://127.0.0.1:8080".to_owned())
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `addr` (use `127.0.0.1:0` for any free port) and serves in the background on
    /// the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`std::io::ErrorKind::InvalidInput`] (wrapping a [`ConfigError`]) if `config` does
    /// not pass [`ServerConfig::validate`]; otherwise the errors of binding `addr`.
    pub async fn start(addr: SocketAddr, config: ServerConfig) -> std::io::Result<Server> {
        Self::start_with_cors(addr, config, None).await
    }

    /// [`Server::start`], with CORS for `cors_origin` if given (see the crate
    /// documentation: the headers of every response, the 204 of a preflight). The origin
    /// is fixed for the server's life; `None` is [`Server::start`].
    ///
    /// # Errors
    ///
    /// Those of [`Server::start`], and [`std::io::ErrorKind::InvalidInput`] if
    /// `cors_origin` is not one origin ([`cors_origin`]).
    pub async fn start_with_cors(
        addr: SocketAddr,
        config: ServerConfig,
        cors_origin: Option<&str>,
    ) -> std::io::Result<Server> {
        config
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let cors_origin = cors_origin
            .map(crate::cors_origin)
            .transpose()
            .map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("cors_origin: {e}"),
                )
            })?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Inner::new(config)));
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(Arc::clone(&shared), cors_origin);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Server {
            addr,
            shared,
            stop: Some(stop),
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A copy of the counters.
    pub fn stats(&self) -> ServerStats {
        lock(&self.shared).stats.clone()
    }

    /// Replaces the knobs (the dice keep their state).
    ///
    /// # Errors
    ///
    /// If `config` does not pass [`ServerConfig::validate`]; the knobs are then unchanged.
    pub fn configure(&self, config: ServerConfig) -> Result<(), ConfigError> {
        config.validate()?;
        lock(&self.shared).config = config;
        Ok(())
    }

    /// Invalidates every access token (refresh tokens stay valid): a 401 storm.
    pub fn revoke_access_tokens(&self) {
        lock(&self.shared).access.clear();
    }

    /// Revokes every token family: refreshes are refused from now on.
    pub fn revoke_families(&self) {
        lock(&self.shared).revoke_all();
    }

    /// Stops serving and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}
