//! Counters for observability and for tests that assert exact numbers.

use crate::command::FailReason;

/// What the coordinator has done since it was created. Cheap to copy.
/// `#[non_exhaustive]`: counters may be added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Stats {
    /// Requests submitted.
    pub submitted: u64,
    /// `Send` commands emitted.
    pub sent: u64,
    /// `Replay` commands emitted.
    pub replayed: u64,
    /// `Complete` commands emitted.
    pub completed: u64,
    /// `Fail` commands emitted, by reason.
    pub failed: FailCounts,
    /// Requests the host cancelled before their terminal command.
    pub cancelled: u64,
    /// 401s (any refresh status) reported.
    pub unauthorized_responses: u64,
    /// Refresh cycles started (what the global window counts).
    pub refresh_cycles: u64,
    /// `Refresh` commands emitted (cycles plus transient retries).
    pub refresh_attempts: u64,
    /// Refresh results adopted.
    pub refresh_succeeded: u64,
    /// Refreshes the token endpoint rejected.
    pub refresh_rejected: u64,
    /// Transient refresh failures acted on, deadline expiries included.
    pub refresh_transient: u64,
    /// Refresh attempts abandoned at their deadline.
    pub refresh_timeouts: u64,
    /// Refresh results ignored as stale (normal under races).
    pub refresh_results_ignored: u64,
    /// `Logout` commands emitted.
    pub logouts: u64,
}

/// `Fail` commands by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct FailCounts {
    /// [`FailReason::NotLoggedIn`]
    pub not_logged_in: u64,
    /// [`FailReason::LoggedOut`]
    pub logged_out: u64,
    /// [`FailReason::RefreshRejected`]
    pub refresh_rejected: u64,
    /// [`FailReason::RefreshUnavailable`]
    pub refresh_unavailable: u64,
    /// [`FailReason::ExcessiveRefresh`]
    pub excessive_refresh: u64,
    /// [`FailReason::Unauthorized`]
    pub unauthorized: u64,
    /// [`FailReason::QueueFull`]
    pub queue_full: u64,
    /// [`FailReason::WaitTimeout`]
    pub wait_timeout: u64,
    /// [`FailReason::Transport`]: transport errors the host reported.
    pub transport: u64,
}

impl FailCounts {
    /// The counter for `reason`.
    pub fn get(&self, reason: FailReason) -> u64 {
        *self.slot(reason)
    }

    /// All failures.
    pub fn total(&self) -> u64 {
        FailReason::ALL.iter().map(|&r| self.get(r)).sum()
    }

    pub(crate) fn bump(&mut self, reason: FailReason) {
        *self.slot_mut(reason) += 1;
    }

    fn slot(&self, reason: FailReason) -> &u64 {
        match reason {
            FailReason::NotLoggedIn => &self.not_logged_in,
            FailReason::LoggedOut => &self.logged_out,
            FailReason::RefreshRejected => &self.refresh_rejected,
            FailReason::RefreshUnavailable => &self.refresh_unavailable,
            FailReason::ExcessiveRefresh => &self.excessive_refresh,
            FailReason::Unauthorized => &self.unauthorized,
            FailReason::QueueFull => &self.queue_full,
            FailReason::WaitTimeout => &self.wait_timeout,
            FailReason::Transport => &self.transport,
        }
    }

    fn slot_mut(&mut self, reason: FailReason) -> &mut u64 {
        match reason {
            FailReason::NotLoggedIn => &mut self.not_logged_in,
            FailReason::LoggedOut => &mut self.logged_out,
            FailReason::RefreshRejected => &mut self.refresh_rejected,
            FailReason::RefreshUnavailable => &mut self.refresh_unavailable,
            FailReason::ExcessiveRefresh => &mut self.excessive_refresh,
            FailReason::Unauthorized => &mut self.unauthorized,
            FailReason::QueueFull => &mut self.queue_full,
            FailReason::WaitTimeout => &mut self.wait_timeout,
            FailReason::Transport => &mut self.transport,
        }
    }
}
