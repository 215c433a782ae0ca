//! Configuration, with the defaults of the behaviour contract and validation.

use crate::error::ConfigError;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// How the coordinator behaves. Start from [`Config::default`] (the contract's defaults)
/// and change what you need, with the `with_*` methods or by assigning fields;
/// [`Coordinator::new`](crate::Coordinator::new) validates it.
///
/// ```
/// use reauth::{Config, RefreshWindow};
///
/// let config = Config::default()
///     .with_refresh_statuses([401, 403])
///     .with_refresh_window(RefreshWindow::new(10, 60_000));
/// assert!(config.validate().is_ok());
/// ```
///
/// `#[non_exhaustive]`: new options can be added without breaking callers, so build it
/// from the default rather than with a struct literal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// Statuses that mean "the access token was refused". Default `[401]`; some APIs add
    /// 403. Each must be in 400..=599, at most 16. Empty: no response ever starts a
    /// refresh (tokens are still refreshed before they expire).
    pub refresh_statuses: Vec<u16>,
    /// Refresh this long before the access token expires. The skew applied to one token is
    /// at most half its lifetime, so short-lived tokens are still used. Default 30 000.
    pub expiry_skew_ms: u64,
    /// A refresh started only because the token reached its expiry skew counts in the
    /// refresh window (rule 7) when the token it replaces arrived less than this long ago:
    /// a server that keeps handing out tokens that are already expiring is a loop, a
    /// token that lived its life is not. Default 500.
    pub min_token_age_ms: u64,
    /// How many times one request may be replayed after a 401. Default 1.
    pub max_replays_per_request: u32,
    /// At most this many refresh cycles may start within a sliding window.
    pub refresh_window: RefreshWindow,
    /// First backoff after a transient refresh failure. Default 500.
    pub initial_backoff_ms: u64,
    /// Cap on the backoff, also on the server's `Retry-After`. Default 30 000.
    pub max_backoff_ms: u64,
    /// Transient failures retried within one refresh cycle. Default 3.
    pub max_retries: u32,
    /// A refresh call with no answer after this long counts as a transient failure.
    /// Default 30 000.
    pub refresh_timeout_ms: u64,
    /// At most this many requests wait for a refresh; the next one fails with
    /// `QueueFull`. Default 1 024.
    pub max_pending: u32,
    /// A request waits at most this long for a refresh, then fails with `WaitTimeout`.
    /// Default 60 000.
    pub max_wait_ms: u64,
}

/// The global refresh budget (rule 7): at most `max_refreshes` cycles start within any
/// `window_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RefreshWindow {
    /// Default 5.
    pub max_refreshes: u32,
    /// Default 30 000.
    pub window_ms: u64,
}

impl RefreshWindow {
    /// At most `max_refreshes` cycles within any `window_ms`.
    pub fn new(max_refreshes: u32, window_ms: u64) -> Self {
        RefreshWindow {
            max_refreshes,
            window_ms,
        }
    }
}

impl Default for RefreshWindow {
    fn default() -> Self {
        RefreshWindow {
            max_refreshes: 5,
            window_ms: 30_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            refresh_statuses: vec![401],
            expiry_skew_ms: 30_000,
            min_token_age_ms: 500,
            max_replays_per_request: 1,
            refresh_window: RefreshWindow::default(),
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            max_retries: 3,
            refresh_timeout_ms: 30_000,
            max_pending: 1_024,
            max_wait_ms: 60_000,
        }
    }
}

impl Config {
    /// Sets [`refresh_statuses`](Self::refresh_statuses): the statuses that mean "the access token was refused".
    #[must_use]
    pub fn with_refresh_statuses(mut self, value: impl Into<Vec<u16>>) -> Self {
        self.refresh_statuses = value.into();
        self
    }

    /// Sets [`expiry_skew_ms`](Self::expiry_skew_ms): how long before expiry a token counts as expiring.
    #[must_use]
    pub fn with_expiry_skew_ms(mut self, value: u64) -> Self {
        self.expiry_skew_ms = value;
        self
    }

    /// Sets [`min_token_age_ms`](Self::min_token_age_ms): below this age an expiry-driven
    /// refresh counts in the refresh window.
    #[must_use]
    pub fn with_min_token_age_ms(mut self, value: u64) -> Self {
        self.min_token_age_ms = value;
        self
    }

    /// Sets [`max_replays_per_request`](Self::max_replays_per_request): how often one request may be replayed.
    #[must_use]
    pub fn with_max_replays_per_request(mut self, value: u32) -> Self {
        self.max_replays_per_request = value;
        self
    }

    /// Sets [`refresh_window`](Self::refresh_window): the global refresh budget.
    #[must_use]
    pub fn with_refresh_window(mut self, value: RefreshWindow) -> Self {
        self.refresh_window = value;
        self
    }

    /// Sets [`initial_backoff_ms`](Self::initial_backoff_ms): the first backoff after a transient failure.
    #[must_use]
    pub fn with_initial_backoff_ms(mut self, value: u64) -> Self {
        self.initial_backoff_ms = value;
        self
    }

    /// Sets [`max_backoff_ms`](Self::max_backoff_ms): the cap on backoff and `Retry-After`.
    #[must_use]
    pub fn with_max_backoff_ms(mut self, value: u64) -> Self {
        self.max_backoff_ms = value;
        self
    }

    /// Sets [`max_retries`](Self::max_retries): the transient failures retried per cycle.
    #[must_use]
    pub fn with_max_retries(mut self, value: u32) -> Self {
        self.max_retries = value;
        self
    }

    /// Sets [`refresh_timeout_ms`](Self::refresh_timeout_ms): how long a refresh call may go unanswered.
    #[must_use]
    pub fn with_refresh_timeout_ms(mut self, value: u64) -> Self {
        self.refresh_timeout_ms = value;
        self
    }

    /// Sets [`max_pending`](Self::max_pending): how many requests may wait.
    #[must_use]
    pub fn with_max_pending(mut self, value: u32) -> Self {
        self.max_pending = value;
        self
    }

    /// Sets [`max_wait_ms`](Self::max_wait_ms): how long a request may wait.
    #[must_use]
    pub fn with_max_wait_ms(mut self, value: u64) -> Self {
        self.max_wait_ms = value;
        self
    }

    /// Checks every field against its documented range. The ranges exclude only values
    /// that cannot be meant (a zero queue, a day-long backoff, a 2xx refresh status).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.refresh_statuses.len() > 16 {
            return Err(ConfigError::TooManyRefreshStatuses);
        }
        for (i, &status) in self.refresh_statuses.iter().enumerate() {
            if !(400..=599).contains(&status) {
                return Err(ConfigError::InvalidRefreshStatus(status));
            }
            if self.refresh_statuses[..i].contains(&status) {
                return Err(ConfigError::DuplicateRefreshStatus(status));
            }
        }
        range("expiry_skew_ms", self.expiry_skew_ms, 0, DAY_MS)?;
        range("min_token_age_ms", self.min_token_age_ms, 0, DAY_MS)?;
        range(
            "max_replays_per_request",
            self.max_replays_per_request.into(),
            0,
            16,
        )?;
        range(
            "refresh_window.max_refreshes",
            self.refresh_window.max_refreshes.into(),
            1,
            10_000,
        )?;
        range(
            "refresh_window.window_ms",
            self.refresh_window.window_ms,
            1,
            DAY_MS,
        )?;
        range("max_backoff_ms", self.max_backoff_ms, 1, DAY_MS)?;
        range(
            "initial_backoff_ms",
            self.initial_backoff_ms,
            1,
            self.max_backoff_ms,
        )?;
        range("max_retries", self.max_retries.into(), 0, 100)?;
        range("refresh_timeout_ms", self.refresh_timeout_ms, 1, DAY_MS)?;
        range("max_pending", self.max_pending.into(), 1, 1_000_000)?;
        range("max_wait_ms", self.max_wait_ms, 1, DAY_MS)?;
        Ok(())
    }

    /// Whether `status` means the access token was refused.
    pub fn is_refresh_status(&self, status: u16) -> bool {
        self.refresh_statuses.contains(&status)
    }
}

fn range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_contract() {
        let c = Config::default();
        c.validate().expect("defaults are valid");
        assert_eq!(c.refresh_statuses, [401]);
        assert_eq!(c.max_replays_per_request, 1);
        assert_eq!(
            (c.refresh_window.max_refreshes, c.refresh_window.window_ms),
            (5, 30_000)
        );
    }

    #[test]
    fn limits_are_inclusive() {
        let sixteen = Config::default().with_refresh_statuses((400..416).collect::<Vec<u16>>());
        assert_eq!(
            sixteen.validate(),
            Ok(()),
            "16 refresh statuses are allowed"
        );
        let edges = Config::default()
            .with_refresh_statuses([400, 599])
            .with_max_pending(1_000_000)
            .with_max_retries(100)
            .with_max_replays_per_request(16)
            .with_expiry_skew_ms(DAY_MS)
            .with_max_backoff_ms(DAY_MS)
            .with_initial_backoff_ms(DAY_MS)
            .with_refresh_timeout_ms(DAY_MS)
            .with_max_wait_ms(DAY_MS)
            .with_refresh_window(RefreshWindow::new(10_000, DAY_MS));
        assert_eq!(edges.validate(), Ok(()));
        let lowest = Config::default()
            .with_max_pending(1)
            .with_max_retries(0)
            .with_max_replays_per_request(0)
            .with_expiry_skew_ms(0)
            .with_initial_backoff_ms(1)
            .with_max_backoff_ms(1)
            .with_refresh_timeout_ms(1)
            .with_max_wait_ms(1)
            .with_refresh_window(RefreshWindow::new(1, 1));
        assert_eq!(lowest.validate(), Ok(()));
        assert!(Config::default().is_refresh_status(401));
        assert!(!Config::default().is_refresh_status(403));
    }

    #[test]
    fn each_setter_sets_its_field() {
        let c = Config::default()
            .with_refresh_statuses([403])
            .with_expiry_skew_ms(1)
            .with_max_replays_per_request(2)
            .with_refresh_window(RefreshWindow::new(3, 4))
            .with_initial_backoff_ms(5)
            .with_max_backoff_ms(6)
            .with_max_retries(7)
            .with_refresh_timeout_ms(8)
            .with_max_pending(9)
            .with_max_wait_ms(10);
        assert_eq!(c.refresh_statuses, [403]);
        assert_eq!((c.expiry_skew_ms, c.max_replays_per_request), (1, 2));
        assert_eq!(
            (c.refresh_window.max_refreshes, c.refresh_window.window_ms),
            (3, 4)
        );
        assert_eq!(
            (c.initial_backoff_ms, c.max_backoff_ms, c.max_retries),
            (5, 6, 7)
        );
        assert_eq!(
            (c.refresh_timeout_ms, c.max_pending, c.max_wait_ms),
            (8, 9, 10)
        );
    }

    type Mutation = fn(&mut Config);

    #[test]
    fn absurd_values_are_refused() {
        let bad: Vec<(Mutation, ConfigError)> = vec![
            (
                |c| c.refresh_statuses = vec![200],
                ConfigError::InvalidRefreshStatus(200),
            ),
            (
                |c| c.refresh_statuses = vec![401, 401],
                ConfigError::DuplicateRefreshStatus(401),
            ),
            (
                |c| c.refresh_statuses = (400..420).collect(),
                ConfigError::TooManyRefreshStatuses,
            ),
            (
                |c| c.max_pending = 0,
                ConfigError::OutOfRange {
                    field: "max_pending",
                    value: 0,
                    min: 1,
                    max: 1_000_000,
                },
            ),
            (
                |c| c.initial_backoff_ms = 40_000,
                ConfigError::OutOfRange {
                    field: "initial_backoff_ms",
                    value: 40_000,
                    min: 1,
                    max: 30_000,
                },
            ),
            (
                |c| c.refresh_window.max_refreshes = 0,
                ConfigError::OutOfRange {
                    field: "refresh_window.max_refreshes",
                    value: 0,
                    min: 1,
                    max: 10_000,
                },
            ),
            (
                |c| c.refresh_timeout_ms = 0,
                ConfigError::OutOfRange {
                    field: "refresh_timeout_ms",
                    value: 0,
                    min: 1,
                    max: DAY_MS,
                },
            ),
        ];
        for (mutate, want) in bad {
            let mut c = Config::default();
            mutate(&mut c);
            assert_eq!(c.validate(), Err(want));
        }
    }
}
