//! Identifiers and the commands the core asks the host to carry out.

use std::fmt;

use crate::credentials::{Credentials, Secret};

/// Milliseconds on a monotonic clock chosen by the host. The core never reads a clock.
pub type Timestamp = u64;

/// The end of the clock: the largest `now` an input may carry (2^53 − 1 ms, about
/// 285 000 years; also the largest integer a JSON number or a double holds exactly).
/// A larger `now` — typically a clock helper's error value such as `(uint64_t)-1` — is
/// refused with [`InputError::InvalidTime`](crate::InputError::InvalidTime) and changes
/// nothing, so one bad sample can neither stop the clock nor switch a guard off. Every
/// deadline the core computes stays far below `u64::MAX`: time arithmetic never
/// overflows (contract §3.5).
pub const MAX_TIMESTAMP: Timestamp = (1 << 53) - 1;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(transparent))]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// Names one request for its whole life. Allocated by the core from 1 upwards,
    /// increasing, never reused.
    RequestId
);
id_type!(
    /// Names one set of accepted credentials. Strictly increasing from 1, never reused,
    /// also across logout and login.
    Generation
);
id_type!(
    /// Names one call to the token endpoint. Increasing from 1, never reused.
    AttemptId
);

/// Something the host must do. Commands come out of [`Coordinator::poll_command`] in the
/// order the host must carry them out.
///
/// Exhaustive on purpose (not `#[non_exhaustive]`): a new command is a change of the
/// contract (`docs/contract.md` §6) that every host and binding must handle, so adding
/// one must fail to compile wherever a binding converts commands, not fall into a
/// wildcard arm.
///
/// [`Coordinator::poll_command`]: crate::Coordinator::poll_command
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "every command must be carried out by the host"]
pub enum Command {
    /// Transmit request `id` for the first time with `access_token`, then report
    /// [`handle_response`](crate::Coordinator::handle_response).
    Send {
        /// The request.
        id: RequestId,
        /// The bearer token to put in the `Authorization` header.
        access_token: Secret,
        /// The generation of `access_token`.
        generation: Generation,
    },
    /// Transmit request `id` again with `access_token`, then report
    /// [`handle_response`](crate::Coordinator::handle_response).
    Replay {
        /// The request.
        id: RequestId,
        /// The bearer token to put in the `Authorization` header.
        access_token: Secret,
        /// The generation of `access_token`.
        generation: Generation,
    },
    /// Call the token endpoint with `refresh_token` (`grant_type=refresh_token`), then
    /// report [`handle_refresh_succeeded`](crate::Coordinator::handle_refresh_succeeded)
    /// or [`handle_refresh_failed`](crate::Coordinator::handle_refresh_failed) with
    /// this `attempt`. Run it on an executor the waiting requests do not block.
    Refresh {
        /// Names this call; report its outcome with it.
        attempt: AttemptId,
        /// The newest refresh token the core knows.
        refresh_token: Secret,
    },
    /// Persist `credentials` in secure storage. Emitted before the `Send`/`Replay`
    /// commands a refresh releases. `refresh_token` is the one now in use (the previous
    /// one if the server did not rotate it).
    ///
    /// To restore the expiry after a restart or in another process (contract §12),
    /// persist it as an absolute wall-clock time: `expires_at − now` (the `now` of the
    /// input that produced this command) is the lifetime left, so store
    /// `wall_clock_now + (expires_at − now)`; when loading, pass
    /// `expires_in_ms = max(0, stored − wall_clock_now)` to `login`. Do not persist
    /// `credentials.expires_in_ms`: it is the lifetime as the server stated it, which
    /// makes a reloaded token look fresh again.
    StoreCredentials {
        /// The credentials to store.
        credentials: Credentials,
        /// Their generation.
        generation: Generation,
        /// When the access token expires, on the host's clock (the same clock as `now`);
        /// `None` if the server stated no lifetime. At most [`MAX_TIMESTAMP`].
        expires_at: Option<Timestamp>,
    },
    /// Hand the response the host received for `id` to its caller as is. Terminal.
    Complete {
        /// The request.
        id: RequestId,
    },
    /// Fail the caller's request `id` with `reason`. Terminal.
    Fail {
        /// The request.
        id: RequestId,
        /// Why.
        reason: FailReason,
    },
    /// Delete the stored credentials and show the login screen. Emitted after the `Fail`
    /// commands it causes.
    Logout {
        /// Why.
        reason: LogoutReason,
    },
}

impl Command {
    /// The request this command is about, if any.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            Command::Send { id, .. }
            | Command::Replay { id, .. }
            | Command::Complete { id }
            | Command::Fail { id, .. } => Some(*id),
            Command::Refresh { .. } | Command::StoreCredentials { .. } | Command::Logout { .. } => {
                None
            }
        }
    }

    /// Whether this command ends its request (`Complete` or `Fail`).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Command::Complete { .. } | Command::Fail { .. })
    }
}

/// Why a request failed. Each maps to a user-facing outcome in the host.
///
/// Exhaustive on purpose (not `#[non_exhaustive]`): a new reason is a change of the
/// contract (`docs/contract.md` §6) that every host and binding must handle, so adding
/// one must fail to compile wherever a binding converts it, not be mislabelled by a
/// wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum FailReason {
    /// Submitted while no session exists. Show the login.
    NotLoggedIn,
    /// The session ended (logout, or no refresh token) while the request waited or was in
    /// flight.
    LoggedOut,
    /// The token endpoint refused the refresh grant; a `Logout` follows.
    RefreshRejected,
    /// The token endpoint could not be reached within the retry budget. The session is
    /// still logged in: the caller may retry later.
    RefreshUnavailable,
    /// Too many refresh cycles in the window (a server or clock problem); a `Logout`
    /// follows.
    ExcessiveRefresh,
    /// Refused although the session's token is good: still 401 after the request's
    /// replay budget, or its endpoint refuses a token that works elsewhere (rule 20).
    /// Hand the caller the response the host got (status and body).
    Unauthorized,
    /// Too many requests were waiting for a refresh.
    QueueFull,
    /// The request waited longer than `max_wait_ms` for a refresh.
    WaitTimeout,
    /// The host reported a transport error for it (no HTTP status: connection reset, DNS,
    /// TLS); hand the caller the error the host got. The session is not affected.
    Transport,
}

impl FailReason {
    /// Every reason, in declaration order.
    pub const ALL: [FailReason; 9] = [
        FailReason::NotLoggedIn,
        FailReason::LoggedOut,
        FailReason::RefreshRejected,
        FailReason::RefreshUnavailable,
        FailReason::ExcessiveRefresh,
        FailReason::Unauthorized,
        FailReason::QueueFull,
        FailReason::WaitTimeout,
        FailReason::Transport,
    ];

    /// A stable snake_case name (the same as in transcripts).
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::NotLoggedIn => "not_logged_in",
            FailReason::LoggedOut => "logged_out",
            FailReason::RefreshRejected => "refresh_rejected",
            FailReason::RefreshUnavailable => "refresh_unavailable",
            FailReason::ExcessiveRefresh => "excessive_refresh",
            FailReason::Unauthorized => "unauthorized",
            FailReason::QueueFull => "queue_full",
            FailReason::WaitTimeout => "wait_timeout",
            FailReason::Transport => "transport",
        }
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the session ended.
///
/// Exhaustive on purpose (not `#[non_exhaustive]`): a new reason is a change of the
/// contract (`docs/contract.md` §6) that every host and binding must handle, so adding
/// one must fail to compile wherever a binding converts it, not be mislabelled by a
/// wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum LogoutReason {
    /// The host called [`logout`](crate::Coordinator::logout).
    Requested,
    /// The token endpoint refused the refresh grant.
    RefreshRejected,
    /// A refresh was needed and there is no refresh token.
    NoRefreshToken,
    /// Too many refresh cycles in the window.
    ExcessiveRefresh,
}

impl LogoutReason {
    /// A stable snake_case name (the same as in transcripts).
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutReason::Requested => "requested",
            LogoutReason::RefreshRejected => "refresh_rejected",
            LogoutReason::NoRefreshToken => "no_refresh_token",
            LogoutReason::ExcessiveRefresh => "excessive_refresh",
        }
    }
}

impl fmt::Display for LogoutReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of one request. `#[non_exhaustive]`: start from `RequestOptions::default()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RequestOptions {
    /// `false` for a request whose body cannot be sent twice (a stream): on a 401 its
    /// caller gets the 401 (`Complete`) instead of a replay. Default `true`.
    pub replayable: bool,
    /// `false` for a request whose refusal must not touch the session (rule 19): a call
    /// to a public endpoint, or one whose 401/403 means "not allowed" rather than "token
    /// expired". Its refresh status completes as is: no refresh starts, the token is not
    /// marked bad. It still never goes out with a token known bad or inside its skew.
    /// Default `true`.
    pub refresh: bool,
    /// The endpoint (or scope) the request goes to, if the host names it (rule 20): a
    /// route that refuses a token which works elsewhere is remembered for that token, and
    /// its further refusals fail at once instead of refreshing again. Default `None`.
    pub route: Option<RouteKey>,
}

/// Names a route: an endpoint, or a scope, whose refusals the core should tell apart
/// from a bad token (rule 20). Build it from the route's template or scope name with
/// [`RouteKey::from_name`], or from the host's own numbering with [`RouteKey::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct RouteKey(std::num::NonZeroU32);

impl RouteKey {
    /// The key numbered `key`; `None` for 0.
    pub fn new(key: u32) -> Option<RouteKey> {
        std::num::NonZeroU32::new(key).map(RouteKey)
    }

    /// The key of a route or scope name, e.g. `"GET /admin/users"` (32-bit FNV-1a; a
    /// hash of 0 becomes 1). Use the route's template, not a URL with ids in it, so that
    /// one endpoint has one key.
    pub fn from_name(name: &str) -> RouteKey {
        let mut key = RouteKeyBuilder::default();
        name.bytes().for_each(|b| key.push(b));
        key.finish()
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

/// [`RouteKey::from_name`] of a name fed one byte at a time, for a host that spells the
/// name piece by piece without allocating it (`reauth-host`'s default route).
#[derive(Clone, Copy, Debug)]
pub struct RouteKeyBuilder(u32);

impl Default for RouteKeyBuilder {
    fn default() -> Self {
        RouteKeyBuilder(0x811c_9dc5)
    }
}

impl RouteKeyBuilder {
    /// The name's next byte.
    #[inline]
    pub fn push(&mut self, b: u8) {
        self.0 = (self.0 ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }

    /// The key of the bytes pushed (32-bit FNV-1a; a hash of 0 becomes 1).
    #[inline]
    pub fn finish(self) -> RouteKey {
        RouteKey(std::num::NonZeroU32::new(self.0).unwrap_or(std::num::NonZeroU32::MIN))
    }
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            replayable: true,
            refresh: true,
            route: None,
        }
    }
}

impl RequestOptions {
    /// Sets [`replayable`](Self::replayable): `false` for a body that cannot be sent twice.
    #[must_use]
    pub fn with_replayable(mut self, replayable: bool) -> Self {
        self.replayable = replayable;
        self
    }

    /// Sets [`route`](Self::route).
    #[must_use]
    pub fn with_route(mut self, route: RouteKey) -> Self {
        self.route = Some(route);
        self
    }

    /// Sets [`refresh`](Self::refresh): `false` opts this request out of refreshing.
    #[must_use]
    pub fn with_refresh(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }
}

/// How a refresh call failed.
///
/// Exhaustive on purpose (not `#[non_exhaustive]`): a new kind of failure is a change of
/// the contract (`docs/contract.md` §5) that every host and binding must handle, so
/// adding one must fail to compile wherever a binding converts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum RefreshFailure {
    /// The token endpoint refused the grant (`invalid_grant`, or a 400/401 with an OAuth
    /// error). Terminal: the session ends.
    Rejected,
    /// Network error, 5xx, 429, or no answer. Retried with backoff; never logs out.
    Transient {
        /// The server's `Retry-After`, in milliseconds, if it sent one.
        #[cfg_attr(feature = "serde", serde(default))]
        retry_after_ms: Option<u64>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_are_distinct_snake_case_and_displayed() {
        let names: Vec<&str> = FailReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "not_logged_in",
                "logged_out",
                "refresh_rejected",
                "refresh_unavailable",
                "excessive_refresh",
                "unauthorized",
                "queue_full",
                "wait_timeout",
                "transport"
            ]
        );
        for r in FailReason::ALL {
            assert_eq!(r.to_string(), r.as_str());
        }
        let logouts = [
            LogoutReason::Requested,
            LogoutReason::RefreshRejected,
            LogoutReason::NoRefreshToken,
            LogoutReason::ExcessiveRefresh,
        ];
        let names: Vec<String> = logouts.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            names,
            [
                "requested",
                "refresh_rejected",
                "no_refresh_token",
                "excessive_refresh"
            ]
        );
        assert_eq!(RequestId(7).to_string(), "7");
    }

    #[test]
    fn commands_know_their_request_and_whether_they_end_it() {
        let token = Secret::new("t");
        let cases = [
            (
                Command::Send {
                    id: RequestId(1),
                    access_token: token.clone(),
                    generation: Generation(1),
                },
                Some(1),
                false,
            ),
            (
                Command::Replay {
                    id: RequestId(2),
                    access_token: token.clone(),
                    generation: Generation(1),
                },
                Some(2),
                false,
            ),
            (
                Command::Refresh {
                    attempt: AttemptId(1),
                    refresh_token: token.clone(),
                },
                None,
                false,
            ),
            (
                Command::StoreCredentials {
                    credentials: Credentials::new("a"),
                    generation: Generation(2),
                    expires_at: None,
                },
                None,
                false,
            ),
            (Command::Complete { id: RequestId(3) }, Some(3), true),
            (
                Command::Fail {
                    id: RequestId(4),
                    reason: FailReason::QueueFull,
                },
                Some(4),
                true,
            ),
            (
                Command::Logout {
                    reason: LogoutReason::Requested,
                },
                None,
                false,
            ),
        ];
        for (command, id, terminal) in cases {
            assert_eq!(command.request_id().map(|r| r.0), id, "{command:?}");
            assert_eq!(command.is_terminal(), terminal, "{command:?}");
        }
    }
}
