//! Inputs as data, for hosts that queue them, for transcripts, fuzzing and model checking.

use crate::command::{AttemptId, RefreshFailure, RequestId, RequestOptions, Timestamp};
use crate::coordinator::Coordinator;
use crate::credentials::Credentials;
use crate::error::InputError;

/// One input to the coordinator: each variant names one input method.
///
/// In JSON (feature `serde`) an input is an object tagged by `"type"`, e.g.
/// `{"type": "response", "id": 1, "status": 401}`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)
)]
pub enum Input {
    /// [`Coordinator::login`]
    Login {
        /// The session's credentials.
        credentials: Credentials,
    },
    /// [`Coordinator::submit`]
    Submit {
        /// Defaults to a replayable request.
        #[cfg_attr(feature = "serde", serde(default))]
        options: RequestOptions,
    },
    /// [`Coordinator::handle_response`]
    Response {
        /// The request.
        id: RequestId,
        /// The HTTP status.
        status: u16,
    },
    /// [`Coordinator::handle_refresh_succeeded`]
    RefreshSucceeded {
        /// The attempt that returned.
        attempt: AttemptId,
        /// What the token endpoint returned.
        credentials: Credentials,
    },
    /// [`Coordinator::handle_refresh_failed`]
    RefreshFailed {
        /// The attempt that failed.
        attempt: AttemptId,
        /// How.
        failure: RefreshFailure,
    },
    /// [`Coordinator::handle_transport_error`]
    TransportError {
        /// The request.
        id: RequestId,
    },
    /// [`Coordinator::handle_timeout`]
    Timeout,
    /// [`Coordinator::cancel`]
    Cancel {
        /// The request.
        id: RequestId,
    },
    /// [`Coordinator::force_refresh`]
    ForceRefresh,
    /// [`Coordinator::logout`]
    Logout,
    /// [`Coordinator::begin_restore`]
    BeginRestore,
    /// [`Coordinator::restore_failed`]
    RestoreFailed,
}

impl Input {
    /// A short name (the JSON `type`).
    pub fn name(&self) -> &'static str {
        match self {
            Input::Login { .. } => "login",
            Input::Submit { .. } => "submit",
            Input::Response { .. } => "response",
            Input::RefreshSucceeded { .. } => "refresh_succeeded",
            Input::RefreshFailed { .. } => "refresh_failed",
            Input::TransportError { .. } => "transport_error",
            Input::Timeout => "timeout",
            Input::Cancel { .. } => "cancel",
            Input::ForceRefresh => "force_refresh",
            Input::Logout => "logout",
            Input::BeginRestore => "begin_restore",
            Input::RestoreFailed => "restore_failed",
        }
    }
}

impl Coordinator {
    /// Applies one input at `now`, as if the named method had been called. Returns the new
    /// request's id for [`Input::Submit`].
    pub fn apply(&mut self, now: Timestamp, input: Input) -> Result<Option<RequestId>, InputError> {
        match input {
            Input::Login { credentials } => self.login(now, credentials)?,
            Input::Submit { options } => return self.submit(now, options).map(Some),
            Input::Response { id, status } => self.handle_response(now, id, status)?,
            Input::RefreshSucceeded {
                attempt,
                credentials,
            } => self.handle_refresh_succeeded(now, attempt, credentials)?,
            Input::RefreshFailed { attempt, failure } => {
                self.handle_refresh_failed(now, attempt, failure)?
            }
            Input::TransportError { id } => self.handle_transport_error(now, id)?,
            Input::Timeout => self.handle_timeout(now)?,
            Input::Cancel { id } => self.cancel(now, id)?,
            Input::ForceRefresh => self.force_refresh(now)?,
            Input::Logout => self.logout(now)?,
            Input::BeginRestore => self.begin_restore(now)?,
            Input::RestoreFailed => self.restore_failed(now)?,
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_json_types() {
        let id = RequestId(1);
        let attempt = AttemptId(1);
        let inputs = [
            Input::Login {
                credentials: Credentials::new("a"),
            },
            Input::Submit {
                options: RequestOptions::default(),
            },
            Input::Response { id, status: 200 },
            Input::RefreshSucceeded {
                attempt,
                credentials: Credentials::new("a"),
            },
            Input::RefreshFailed {
                attempt,
                failure: RefreshFailure::Rejected,
            },
            Input::TransportError { id },
            Input::Timeout,
            Input::Cancel { id },
            Input::ForceRefresh,
            Input::Logout,
            Input::BeginRestore,
            Input::RestoreFailed,
        ];
        let names: Vec<&str> = inputs.iter().map(Input::name).collect();
        assert_eq!(
            names,
            [
                "login",
                "submit",
                "response",
                "refresh_succeeded",
                "refresh_failed",
                "transport_error",
                "timeout",
                "cancel",
                "force_refresh",
                "logout",
                "begin_restore",
                "restore_failed"
            ]
        );
    }
}
