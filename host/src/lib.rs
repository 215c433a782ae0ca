//! The host's half of the reauth contract, written once: everything an adapter does around
//! the core that is not "wake the caller, keep the timer, do the HTTP". Sans-IO like the
//! core — no HTTP client, no clock, no files — so that every adapter (reqwest, httpx,
//! OkHttp, URLSession) and every binding shares one checked copy:
//!
//! - [`TokenEndpoint::refresh_request`]: the refresh call (RFC 6749 §6, client
//!   authentication §2.3.1), form-encoded.
//! - [`read_token_response`]: its answer, read within [`MAX_TOKEN_RESPONSE_BYTES`], as
//!   [`TokenAnswer`] — what to report to the core. A rotated refresh token in any 200 is
//!   never dropped (contract §12.3).
//! - [`retry_after_ms`]: `Retry-After` as delta-seconds or an HTTP-date.
//! - [`bearer_error`]: RFC 6750 §3 challenges; `insufficient_scope` is the caller's
//!   answer, never a refresh (§12.4).
//! - [`default_route`]: the route key per request from method, origin and path (rule 20).
//! - [`StoredCredentials`], [`plan_refresh`], [`after_rejection`], [`keep_rotation`]: the
//!   store recipe (§12.1–§12.3).
//! - [`Driver`]: the coordinator and the routing of its commands — the request an input
//!   is about gets its command back ([`Own`]), others are woken ([`Wake`]), `close()`
//!   ends every wait — as one [`Step`] per input; [`wire`] packs a step into one integer
//!   (and a few bytes when it asks more) so a binding crosses once per event.
//!
//! The refresh, as an adapter runs it for `Refresh { attempt, refresh_token }`:
//!
//! ```
//! use std::time::SystemTime;
//! use reauth::Secret;
//! use reauth_host::{RefreshPlan, TokenAnswer, TokenEndpoint, plan_refresh, read_token_response};
//!
//! let endpoint = TokenEndpoint::new("https://auth.example.com/oauth/token", "my-app");
//! let command_token = Secret::new("rt-1");
//! // Under the store's lock: adopt a sibling's rotation, or call the server.
//! let stored = None; // store.load()
//! let RefreshPlan::Call(token) = plan_refresh(&command_token, stored, SystemTime::now()) else {
//!     unreachable!("nothing stored")
//! };
//! let request = endpoint.refresh_request(&token); // POST request.url, headers, body
//! # let (status, retry_after, body) = (200, None, br#"{"access_token":"at-2","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}"#);
//! match read_token_response(status, retry_after, body, &token, SystemTime::now()) {
//!     TokenAnswer::Succeeded { credentials, .. } => {
//!         // save to the store, then core.handle_refresh_succeeded(now, attempt, credentials)
//!         assert_eq!(credentials.expires_in_ms, Some(3_600_000));
//!     }
//!     other => {
//!         // keep a rotation (keep_rotation), then core.handle_refresh_failed(now, attempt, failure)
//!         let _failure = other.failure();
//!     }
//! }
//! # let _ = request;
//! ```

/// The crate README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod challenge;
mod driver;
mod json;
mod retry_after;
mod route;
mod store;
mod token;
pub mod wire;

pub use challenge::{BearerError, bearer_error};
pub use driver::{Driver, DriverError, Own, Step, Wake};
pub use retry_after::retry_after_ms;
pub use route::{default_route, route_name};
pub use store::{RefreshPlan, StoredCredentials, after_rejection, keep_rotation, plan_refresh};
pub use token::{
    ClientAuth, MAX_TOKEN_RESPONSE_BYTES, Problem, TokenAnswer, TokenEndpoint, TokenRequest,
    read_token_response,
};
