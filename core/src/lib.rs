//! # reauth — access-token refresh, correct once, for every app
//!
//! When an API answers 401, an app must refresh its access token **once**, hold every
//! other request that would fail the same way, replay them with the new token, and, if
//! the refresh is refused, fail them and log the user out — without looping, hanging,
//! losing a request, logging out on a network blip, or losing a rotated refresh token.
//!
//! [`Coordinator`] is a sans-IO state machine that does exactly that. The host feeds it
//! *inputs* — [`login`](Coordinator::login), [`submit`](Coordinator::submit),
//! [`handle_response`](Coordinator::handle_response),
//! [`handle_refresh_succeeded`](Coordinator::handle_refresh_succeeded),
//! [`handle_refresh_failed`](Coordinator::handle_refresh_failed),
//! [`handle_timeout`](Coordinator::handle_timeout), [`cancel`](Coordinator::cancel),
//! [`force_refresh`](Coordinator::force_refresh), [`logout`](Coordinator::logout) —
//! and carries out the [`Command`]s it answers with. The host does the HTTP, owns the
//! clock (every input carries `now`, in milliseconds on a monotonic clock; earlier times
//! are clamped) and stores the credentials.
//!
//! ## The contract
//!
//! - After **every** input, the host MUST drain [`Coordinator::poll_command`] and carry
//!   the commands out in order, then arm a timer for [`Coordinator::poll_timeout`].
//! - Every submitted request gets exactly one terminal command, `Complete` or `Fail`,
//!   unless the host cancels it first.
//! - Host misuse is an `Err(`[`InputError`]`)` and changes nothing; protocol outcomes
//!   (refusal, logout, exhaustion) are commands. A panic is a bug.
//! - The core is deterministic: the same inputs give the same commands.
//!
//! ## The run loop
//!
//! ```
//! use reauth::{Command, Config, Coordinator, Credentials, RequestOptions};
//!
//! let mut core = Coordinator::new(Config::default())?;
//! core.login(0, Credentials::new("at-1").with_refresh_token("rt-1"))?;
//!
//! // Two requests go out with the first token.
//! let a = core.submit(10, RequestOptions::default())?;
//! let b = core.submit(11, RequestOptions::default())?;
//! let mut out = Vec::new();
//! while let Some(command) = core.poll_command() {
//!     out.push(command); // a real host sends the HTTP request here
//! }
//! assert!(matches!(out.as_slice(), [Command::Send { .. }, Command::Send { .. }]));
//!
//! // Both come back 401: exactly one refresh starts; both wait for it.
//! core.handle_response(20, a, 401)?;
//! core.handle_response(21, b, 401)?;
//! let attempt = match core.drain_commands().collect::<Vec<_>>().as_slice() {
//!     [Command::Refresh { attempt, refresh_token }] => {
//!         assert_eq!(refresh_token.expose(), "rt-1");
//!         *attempt
//!     }
//!     other => panic!("expected one refresh, got {other:?}"),
//! };
//!
//! // The refresh succeeds: store the new credentials, then replay both in order.
//! core.handle_refresh_succeeded(30, attempt, Credentials::new("at-2").with_refresh_token("rt-2"))?;
//! let batch: Vec<Command> = core.drain_commands().collect();
//! assert!(matches!(batch[0], Command::StoreCredentials { .. }));
//! assert!(matches!(batch[1], Command::Replay { id, .. } if id == a));
//! assert!(matches!(batch[2], Command::Replay { id, .. } if id == b));
//!
//! // Responses complete them; nothing else is pending.
//! core.handle_response(40, a, 200)?;
//! core.handle_response(41, b, 200)?;
//! assert_eq!(core.drain_commands().count(), 2);
//! assert_eq!(core.poll_timeout(), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Hosts with many threads use [`SharedCoordinator`], which returns each input's batch
//! from the call itself, or appends it to a batch the thread reuses
//! ([`SharedCoordinator::run_into`]: no allocation per call). The exact call order is
//! stated once, on [`Coordinator`].
//!
//! The full behaviour contract is `docs/contract.md` in the repository: every rule
//! (§7.1–7.20) and guarantee (G1–G11) cited in this crate's documentation is numbered
//! there, and the conformance transcripts in `tests/vectors/` show every rule as data.

#![forbid(unsafe_code)]

/// The crate README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod command;
mod config;
mod coordinator;
mod credentials;
mod error;
mod input;
pub mod rules;
mod shared;
mod stats;
mod sync;
#[cfg(feature = "trace")]
pub mod trace;

pub use command::{
    AttemptId, Command, FailReason, Generation, LogoutReason, MAX_TIMESTAMP, RefreshFailure,
    RequestId, RequestOptions, RouteKey, RouteKeyBuilder, Timestamp,
};
pub use config::{Config, RefreshWindow};
pub use coordinator::Coordinator;
#[cfg(reauth_faults)]
pub use coordinator::Fault;
pub use credentials::{Credentials, CredentialsError, MAX_TOKEN_LEN, Secret, TokenKind};
pub use error::{ConfigError, InputError};
pub use input::Input;
pub use shared::{Batch, SharedCoordinator, SharedError};
pub use stats::{FailCounts, Stats};
