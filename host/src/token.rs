//! The token endpoint: the refresh request (RFC 6749 §6, §2.3.1) and its answer read
//! within a size limit (§5.1 success, §5.2 errors), classified into what the host reports
//! to the core.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use reauth::{Credentials, MAX_TOKEN_LEN, RefreshFailure, Secret, TokenKind};

use crate::json::{self, ScanError};
use crate::retry_after::retry_after_ms;

/// The largest token response read, in bytes. Two tokens at their largest
/// ([`MAX_TOKEN_LEN`]) plus the rest of a real answer fit many times over; a body that
/// goes on is refused (transient) instead of filling memory.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 4 * MAX_TOKEN_LEN;

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `client_id` (and `client_secret`, if any) in the form body. The default: how a
    /// public client identifies itself (§3.2.1), and what most servers accept from confidential ones.
    #[default]
    Body,
    /// HTTP Basic with the form-encoded id and secret (`client_secret_basic`), which every
    /// server must support for confidential clients.
    Basic,
}

/// A token endpoint: where and as whom refresh tokens are presented. `Debug` redacts the
/// secret (a [`Secret`]).
#[derive(Clone, Debug)]
pub struct TokenEndpoint {
    url: String,
    client_id: String,
    client_secret: Option<Secret>,
    auth: ClientAuth,
}

/// One refresh call, ready for any HTTP client: `POST url` with these headers and body.
/// `Debug` redacts the body and the `Authorization` value.
pub struct TokenRequest {
    /// The token endpoint.
    pub url: String,
    /// Header names and values to set (`Content-Type`, `Accept`, and `Authorization`
    /// with [`ClientAuth::Basic`]). Values holding a secret are [`Secret`]s.
    pub headers: Vec<(&'static str, Secret)>,
    /// The form-encoded body (it holds the refresh token).
    pub body: Secret,
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("url", &self.url)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("body", &self.body)
            .finish()
    }
}

impl TokenEndpoint {
    /// The endpoint at `url` for the client `client_id` (a public client: no secret).
    pub fn new(url: impl Into<String>, client_id: impl Into<String>) -> Self {
        TokenEndpoint {
            url: url.into(),
            client_id: client_id.into(),
            client_secret: None,
            auth: ClientAuth::Body,
        }
    }

    /// A confidential client's secret.
    #[must_use]
    pub fn with_client_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// How the client authenticates (default [`ClientAuth::Body`]).
    #[must_use]
    pub fn with_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The endpoint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The refresh call for `refresh_token` (RFC 6749 §6): `grant_type=refresh_token`,
    /// form-encoded (Appendix B), asking for JSON.
    pub fn refresh_request(&self, refresh_token: &Secret) -> TokenRequest {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token");
        form.append_pair("refresh_token", refresh_token.expose());
        let mut headers = vec![
            (
                "Content-Type",
                Secret::new("application/x-www-form-urlencoded"),
            ),
            ("Accept", Secret::new("application/json")),
        ];
        match (self.auth, &self.client_secret) {
            (ClientAuth::Basic, Some(secret)) => {
                // §2.3.1: both parts form-encoded, then joined with a colon, then base64.
                let user: String =
                    form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect();
                let pass: String =
                    form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect();
                let pair = Secret::new(format!("{user}:{pass}")); // wiped when dropped
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair.expose());
                headers.push(("Authorization", Secret::new(format!("Basic {encoded}"))));
            }
            (_, secret) => {
                form.append_pair("client_id", &self.client_id);
                if let Some(secret) = secret {
                    form.append_pair("client_secret", secret.expose());
                }
            }
        }
        TokenRequest {
            url: self.url.clone(),
            headers,
            body: Secret::new(form.finish()),
        }
    }
}

/// What was wrong with a token response, or what was noted about an accepted one. Safe to
/// log: it never holds token text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The endpoint answered with this status and no usable OAuth error (5xx, 429, a proxy
    /// page).
    Status(u16),
    /// An OAuth error code that means "try again" (`temporarily_unavailable`,
    /// `server_error`, `slow_down`), with its status.
    RetryableError(String),
    /// The body is longer than [`MAX_TOKEN_RESPONSE_BYTES`].
    TooLarge,
    /// The body broke off before its end (the connection dropped while reading).
    BrokenOff,
    /// The body is not a JSON object.
    NotJson,
    /// A field appears twice, so which value counts is unknown.
    DuplicateField(&'static str),
    /// No `access_token`, or not a string.
    NoAccessToken,
    /// The access token is unusable (empty, too long, not RFC 6749's printable ASCII).
    InvalidAccessToken,
    /// A `refresh_token` that is not a usable token.
    InvalidRefreshToken,
    /// `token_type` is not `Bearer` (case-insensitive).
    NotBearer,
    /// `expires_in` is not a non-negative finite number of seconds; the answer is used as
    /// if it stated no lifetime.
    LifetimeIgnored,
}

impl Problem {
    /// A stable snake_case name of the kind of problem (the conformance table's
    /// `problem`; safe to log).
    pub fn code(&self) -> &'static str {
        match self {
            Problem::Status(_) => "status",
            Problem::RetryableError(_) => "retryable_error",
            Problem::TooLarge => "too_large",
            Problem::BrokenOff => "broken_off",
            Problem::NotJson => "not_json",
            Problem::DuplicateField(_) => "duplicate_field",
            Problem::NoAccessToken => "no_access_token",
            Problem::InvalidAccessToken => "invalid_access_token",
            Problem::InvalidRefreshToken => "invalid_refresh_token",
            Problem::NotBearer => "not_bearer",
            Problem::LifetimeIgnored => "lifetime_ignored",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Status(s) => write!(f, "token endpoint answered {s}"),
            Problem::RetryableError(code) => write!(f, "token endpoint asked to retry ({code})"),
            Problem::TooLarge => write!(
                f,
                "token response longer than {MAX_TOKEN_RESPONSE_BYTES} bytes"
            ),
            Problem::BrokenOff => f.write_str("token response broke off"),
            Problem::NotJson => f.write_str("token response is not a JSON object"),
            Problem::DuplicateField(k) => write!(f, "token response has \"{k}\" twice"),
            Problem::NoAccessToken => f.write_str("token response without an access_token"),
            Problem::InvalidAccessToken => {
                f.write_str("token response with an unusable access_token")
            }
            Problem::InvalidRefreshToken => {
                f.write_str("token response with an unusable refresh_token")
            }
            Problem::NotBearer => f.write_str("token response is not a bearer token"),
            Problem::LifetimeIgnored => {
                f.write_str("token response with an unusable expires_in (ignored: no lifetime)")
            }
        }
    }
}

/// What a token-endpoint answer comes to, and so what the host reports to the core.
/// Exhaustive on purpose: a new outcome is a contract change every binding must handle.
#[derive(Debug)]
pub enum TokenAnswer {
    /// Report `handle_refresh_succeeded` with these credentials. Their refresh token is
    /// the answer's, or the one sent when the answer has none (RFC 6749 §6: not rotated).
    /// `note` is a problem that did not stop the answer from being used (log it).
    Succeeded {
        /// What to report.
        credentials: Credentials,
        /// A problem the answer was used despite.
        note: Option<Problem>,
    },
    /// Report `handle_refresh_failed(Rejected)`: RFC 6749 §5.2, a 400 or 401 whose body
    /// names an OAuth `error` (`invalid_grant`, `invalid_client`, …). The session ends.
    Rejected {
        /// The OAuth error code (printable ASCII, at most 64 bytes; safe to log).
        error: String,
    },
    /// Report `handle_refresh_failed(Transient { retry_after_ms })`: anything else.
    /// When `rotated_refresh_token` is set, the answer was a 200 that rotated the refresh
    /// token but was unusable otherwise: keep it (contract §12.3, [`crate::keep_rotation`])
    /// so that the retry presents the rotated token, never the old one.
    Transient {
        /// The server's `Retry-After`, in milliseconds.
        retry_after_ms: Option<u64>,
        /// Why (safe to log).
        problem: Problem,
        /// A rotated refresh token that this unusable answer carried.
        rotated_refresh_token: Option<Secret>,
    },
}

impl TokenAnswer {
    /// The failure to report, `None` for a success.
    pub fn failure(&self) -> Option<RefreshFailure> {
        match self {
            TokenAnswer::Succeeded { .. } => None,
            TokenAnswer::Rejected { .. } => Some(RefreshFailure::Rejected),
            TokenAnswer::Transient { retry_after_ms, .. } => Some(RefreshFailure::Transient {
                retry_after_ms: *retry_after_ms,
            }),
        }
    }

    /// A transient answer for a call that got no HTTP answer at all (connection refused,
    /// reset, timeout) or whose body could not be read in full.
    pub fn no_answer(problem: Problem) -> Self {
        TokenAnswer::Transient {
            retry_after_ms: None,
            problem,
            rotated_refresh_token: None,
        }
    }
}

/// Reads a token-endpoint answer (RFC 6749 §5.1, §5.2): `status`, its `Retry-After`
/// header (if any), the body (read by the caller up to [`MAX_TOKEN_RESPONSE_BYTES`] + 1
/// bytes — a longer one is [`Problem::TooLarge`]), the refresh token that was sent, and
/// the wall clock (for a `Retry-After` date).
///
/// - 200 with a usable bearer `access_token` → [`TokenAnswer::Succeeded`]; an unusable
///   `expires_in` (negative, not finite, `NaN`, not a number) is read as "no lifetime
///   stated" and noted; a numeric string is read as its number.
/// - 200 otherwise → transient, keeping a usable rotated `refresh_token` (§12.3).
/// - 400/401 with an OAuth `error` → rejected, except the codes that ask for a retry.
/// - anything else (5xx, 429, other statuses, malformed or oversized bodies) → transient
///   with the server's `Retry-After` (delta-seconds or HTTP-date).
pub fn read_token_response(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    sent_refresh_token: &Secret,
    wall_now: SystemTime,
) -> TokenAnswer {
    let retry_after_ms = retry_after.and_then(|v| retry_after_ms(v, wall_now));
    let transient = |problem| TokenAnswer::Transient {
        retry_after_ms,
        problem,
        rotated_refresh_token: None,
    };
    // An adapter reads at most one byte past the limit; what fits is still scanned, so
    // that a rotation before the cut is kept.
    let too_large = body.len() > MAX_TOKEN_RESPONSE_BYTES;
    let body = &body[..body.len().min(MAX_TOKEN_RESPONSE_BYTES)];
    // RFC 8259: JSON is UTF-8. Bytes that are not become U+FFFD, which no token may hold
    // (tokens are printable ASCII), so a broken byte can spoil only the field it is in.
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let scan = json::members(text);
    let fields = Fields {
        members: scan.members,
    };
    let broken = match (too_large, scan.error) {
        (true, _) => Some(Problem::TooLarge),
        (false, None) => None,
        (false, Some(ScanError::Truncated)) if status == 200 => Some(Problem::BrokenOff),
        (false, Some(_)) if status == 200 => Some(Problem::NotJson),
        (false, Some(_)) => Some(Problem::Status(status)),
    };
    if let Some(problem) = broken {
        // Not one whole JSON object: unusable. A 200's rotation among the members read
        // before the problem is still kept (§12.3): the server has rotated.
        let rotated = if status == 200 {
            fields.rotation(sent_refresh_token)
        } else {
            None
        };
        return TokenAnswer::Transient {
            retry_after_ms: if status == 200 { None } else { retry_after_ms },
            problem,
            rotated_refresh_token: rotated,
        };
    }
    if status == 200 {
        return success(fields, sent_refresh_token);
    }
    // §5.2: `error` is one error code, non-empty, of the characters it allows — and never
    // holding the refresh token (an error code is logged).
    if (status == 400 || status == 401)
        && let Ok(Some(error)) = fields.string("error")
        && !error.is_empty()
        && error.bytes().all(|b| b != b'"' && b != b'\\')
        && !error.contains(sent_refresh_token.expose())
    {
        if RETRYABLE_ERRORS.contains(&error.as_str()) {
            return transient(Problem::RetryableError(error));
        }
        return TokenAnswer::Rejected { error };
    }
    transient(Problem::Status(status))
}

/// OAuth error codes that mean "try again later" (RFC 6749 §4.1.2.1; RFC 8628 §3.5).
const RETRYABLE_ERRORS: [&str; 3] = ["temporarily_unavailable", "server_error", "slow_down"];

fn success(fields: Fields<'_>, sent: &Secret) -> TokenAnswer {
    // The rotated refresh token first: whatever else is wrong, it must not be lost.
    let refresh = match fields.token("refresh_token", Problem::InvalidRefreshToken) {
        Ok(r) => r,
        Err(problem) => return TokenAnswer::no_answer(problem),
    };
    let unusable = |problem| TokenAnswer::Transient {
        retry_after_ms: None,
        problem,
        rotated_refresh_token: fields.rotation(sent),
    };
    let access = match fields.token("access_token", Problem::InvalidAccessToken) {
        Ok(Some(a)) => a,
        Ok(None) => return unusable(Problem::NoAccessToken),
        Err(p) => return unusable(p),
    };
    match fields.string("token_type") {
        Ok(None) => {} // REQUIRED by §5.1, but its absence is common: bearer.
        Ok(Some(t)) if t.eq_ignore_ascii_case("bearer") => {}
        Ok(Some(_)) | Err(_) => return unusable(Problem::NotBearer),
    }
    let mut credentials =
        Credentials::new(access).with_refresh_token(refresh.unwrap_or_else(|| sent.clone()));
    let mut note = None;
    match fields.lifetime_ms() {
        Ok(Some(ms)) => credentials = credentials.with_expires_in_ms(ms),
        Ok(None) => {}
        Err(p) => note = Some(p),
    }
    TokenAnswer::Succeeded { credentials, note }
}

/// The fields reauth reads, each at most once.
struct Fields<'a> {
    members: Vec<json::Member<'a>>,
}

impl<'a> Fields<'a> {
    /// The raw value of `key`; `Err` when it appears twice with different values.
    fn raw(&self, key: &'static str) -> Result<Option<&'a str>, Problem> {
        let mut found = None;
        for m in self.members.iter().filter(|m| m.key == key) {
            if found.is_some_and(|f| f != m.raw) {
                return Err(Problem::DuplicateField(key));
            }
            found = Some(m.raw);
        }
        Ok(found.filter(|raw| *raw != "null"))
    }

    /// A usable `refresh_token` other than the one sent: the rotation to keep.
    fn rotation(&self, sent: &Secret) -> Option<Secret> {
        self.token("refresh_token", Problem::InvalidRefreshToken)
            .ok()
            .flatten()
            .filter(|r| r != sent)
    }

    /// A string field; `Err` when it is not a string.
    fn string(&self, key: &'static str) -> Result<Option<String>, Problem> {
        let Some(raw) = self.raw(key)? else {
            return Ok(None);
        };
        match serde_json::from_str::<String>(raw) {
            Ok(s) if s.len() <= 64 && s.bytes().all(|b| (0x20..0x7f).contains(&b)) => Ok(Some(s)),
            _ => Err(Problem::NotJson),
        }
    }

    /// A token field (RFC 6749 A.12, A.17: printable ASCII, here without spaces, as the
    /// core requires); `Err(unusable)` for an unusable one.
    fn token(&self, key: &'static str, unusable: Problem) -> Result<Option<Secret>, Problem> {
        let Some(raw) = self.raw(key)? else {
            return Ok(None);
        };
        let Ok(text) = serde_json::from_str::<String>(raw) else {
            return Err(unusable);
        };
        let secret = Secret::new(text);
        let printable = secret.expose().bytes().all(|b| (0x21..0x7f).contains(&b));
        // The core's own check (its kind only names the token in a message we drop).
        if !printable || secret.validate(TokenKind::Refresh).is_err() {
            return Err(unusable);
        }
        Ok(Some(secret))
    }

    /// `expires_in` in milliseconds: an integer or a float of seconds, or a string of
    /// either; `Err(LifetimeIgnored)` for anything else.
    fn lifetime_ms(&self) -> Result<Option<u64>, Problem> {
        let raw = match self.raw("expires_in") {
            Ok(Some(raw)) => raw,
            Ok(None) => return Ok(None),
            Err(_) => return Err(Problem::LifetimeIgnored),
        };
        let number = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .unwrap_or(raw);
        if let Ok(seconds) = number.parse::<u64>() {
            return Ok(Some(seconds.saturating_mul(1000)));
        }
        // `inf`, `NaN` and the like parse, but are not finite: refused below.
        match number.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => {
                // Saturating float-to-int conversion; the core caps lifetimes at the end of
                // its clock anyway (contract §3.5).
                Ok(Some((s * 1000.0) as u64))
            }
            _ => Err(Problem::LifetimeIgnored),
        }
    }
}
