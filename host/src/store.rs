//! The credential-store recipe (contract §12): what to persist, when to adopt what a
//! sibling process stored, and how a rotation in an unusable answer is kept.

use std::time::{Duration, SystemTime};

use reauth::{Credentials, Secret, Timestamp};

/// Credentials as stored, with the access token's expiry as wall-clock time — never as
/// the lifetime the server stated: a monotonic clock does not survive a restart
/// (contract §12.1). `Debug` redacts the tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCredentials {
    /// The access token.
    pub access_token: Secret,
    /// The refresh token, if the session has one.
    pub refresh_token: Option<Secret>,
    /// When the access token expires; `None` if the server stated no lifetime.
    pub expires_at: Option<SystemTime>,
}

impl StoredCredentials {
    /// What to store for credentials the app logs in with at `wall_now` (after the core
    /// accepted them: refused credentials are never stored).
    pub fn from_login(credentials: &Credentials, wall_now: SystemTime) -> Self {
        // The lifetime counts from now: an expiry at `expires_in_ms` on a clock at 0.
        Self::from_command(credentials, credentials.expires_in_ms, 0, wall_now)
    }

    /// What to store for `StoreCredentials { credentials, expires_at }` produced by an
    /// input at `now` on the core's clock, carried to the wall clock (§12.1): the expiry
    /// is `wall_now + (expires_at − now)`.
    pub fn from_command(
        credentials: &Credentials,
        expires_at: Option<Timestamp>,
        now: Timestamp,
        wall_now: SystemTime,
    ) -> Self {
        StoredCredentials {
            access_token: credentials.access_token.clone(),
            refresh_token: credentials.refresh_token.clone(),
            expires_at: expires_at.map(|at| add(wall_now, at.saturating_sub(now))),
        }
    }

    /// The lifetime left at `wall_now` in milliseconds (0 once passed); `None` if none.
    pub fn lifetime_left_ms(&self, wall_now: SystemTime) -> Option<u64> {
        self.expires_at.map(|at| {
            at.duration_since(wall_now).map_or(0, |left| {
                u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
            })
        })
    }

    /// Credentials to log in (or report an adopted refresh) with: the lifetime is what is
    /// left of the stored expiry, 0 if it passed — the token is then refreshed before any
    /// request uses it (§12.1).
    pub fn to_credentials(&self, wall_now: SystemTime) -> Credentials {
        let mut c = Credentials::new(self.access_token.clone());
        c.refresh_token = self.refresh_token.clone();
        c.expires_in_ms = self.lifetime_left_ms(wall_now);
        c
    }
}

fn add(wall: SystemTime, ms: u64) -> SystemTime {
    // Past the end of SystemTime is "never" in practice; keep the largest we can.
    wall.checked_add(Duration::from_millis(ms))
        .unwrap_or_else(|| wall + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// What to do for a `Refresh { refresh_token }` command, decided under the store's lock
/// from what the store holds (§12.2). Exhaustive on purpose, like [`crate::TokenAnswer`].
#[derive(Debug)]
pub enum RefreshPlan {
    /// A sibling (another process, or an earlier answer of this one) rotated the refresh
    /// token and its access token is still good: report these credentials as the
    /// attempt's success without calling the server.
    Adopt(Credentials),
    /// Call the token endpoint with this refresh token — the store's when it holds a newer
    /// one whose access token is no longer usable (§12.3), else the command's.
    Call(Secret),
}

/// §12.2 and §12.3: the plan for `Refresh { refresh_token: command }` when the store
/// holds `stored` at `wall_now`. The store is the record of the newest refresh token: a
/// different one there was rotated after the core's, so it is adopted (its access token
/// has life left) or presented (it has none), and the command's older one is never sent
/// again — a reuse that a server with reuse detection punishes by revoking the family.
pub fn plan_refresh(
    command: &Secret,
    stored: Option<&StoredCredentials>,
    wall_now: SystemTime,
) -> RefreshPlan {
    match stored {
        Some(s) => match &s.refresh_token {
            Some(theirs) if theirs != command => {
                if s.lifetime_left_ms(wall_now) == Some(0) {
                    RefreshPlan::Call(theirs.clone())
                } else {
                    RefreshPlan::Adopt(s.to_credentials(wall_now))
                }
            }
            _ => RefreshPlan::Call(command.clone()),
        },
        None => RefreshPlan::Call(command.clone()),
    }
}

/// §12.2: after the server rejected `sent`, the store is read once more. A sibling may
/// have rotated meanwhile (its rotation made `sent` stale): `Some(plan)` follows it
/// instead of reporting the rejection; `None` reports the rejection.
pub fn after_rejection(
    sent: &Secret,
    stored: Option<&StoredCredentials>,
    wall_now: SystemTime,
) -> Option<RefreshPlan> {
    match plan_refresh(sent, stored, wall_now) {
        RefreshPlan::Call(t) if &t == sent => None,
        plan => Some(plan),
    }
}

/// §12.3: an answer that rotated the refresh token but is unusable otherwise (a malformed
/// 200) is reported transient, and the rotation is kept in the store — with the access
/// token marked expired — so that the retry presents it ([`plan_refresh`]). Returns what
/// to store: `stored` with the rotated refresh token, or `None` when nothing is stored
/// (there is no access token to keep beside it; the host then logs the loss).
pub fn keep_rotation(
    stored: Option<&StoredCredentials>,
    rotated: &Secret,
) -> Option<StoredCredentials> {
    // Expired at the epoch, not now: a wall clock that steps back must not make the old
    // access token look alive (and be adopted) again.
    stored.map(|s| StoredCredentials {
        access_token: s.access_token.clone(),
        refresh_token: Some(rotated.clone()),
        expires_at: Some(SystemTime::UNIX_EPOCH),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    fn stored(rt: &str, expires: Option<u64>) -> StoredCredentials {
        StoredCredentials {
            access_token: Secret::new("a"),
            refresh_token: Some(Secret::new(rt)),
            expires_at: expires.map(at),
        }
    }

    #[test]
    fn expiry_is_carried_to_the_wall_clock_and_back() {
        let c = Credentials::new("a")
            .with_refresh_token("r")
            .with_expires_in_ms(60_000);
        // Produced at core time 1 000 with expiry at 31 000: 30 s left, whatever it said.
        let s = StoredCredentials::from_command(&c, Some(31_000), 1_000, at(100));
        assert_eq!(s.expires_at, Some(at(130)));
        assert_eq!(s.to_credentials(at(110)).expires_in_ms, Some(20_000));
        assert_eq!(s.to_credentials(at(200)).expires_in_ms, Some(0));
        assert_eq!(
            StoredCredentials::from_login(&c, at(100)).expires_at,
            Some(at(160))
        );
        let forever = StoredCredentials::from_command(&Credentials::new("a"), None, 0, at(1));
        assert_eq!(forever.to_credentials(at(9)).expires_in_ms, None);
    }

    #[test]
    fn the_store_holds_the_newest_refresh_token() {
        let mine = Secret::new("r1");
        // Nothing stored, or the same token: call with the command's.
        assert!(matches!(plan_refresh(&mine, None, at(0)), RefreshPlan::Call(t) if t == mine));
        assert!(
            matches!(plan_refresh(&mine, Some(&stored("r1", Some(50))), at(0)), RefreshPlan::Call(t) if t == mine)
        );
        // A sibling rotated and its token is alive: adopt it with the lifetime left.
        match plan_refresh(&mine, Some(&stored("r2", Some(50))), at(20)) {
            RefreshPlan::Adopt(c) => {
                assert_eq!(c.refresh_token.as_ref().map(Secret::expose), Some("r2"));
                assert_eq!(c.expires_in_ms, Some(30_000));
            }
            p => panic!("{p:?}"),
        }
        // Rotated, but its access token is spent (or was unusable, §12.3): present the
        // rotated refresh token, never the old one.
        assert!(matches!(
            plan_refresh(&mine, Some(&stored("r2", Some(10))), at(20)),
            RefreshPlan::Call(t) if t.expose() == "r2"
        ));
        // After a rejection: follow a newer token once, else report it.
        assert!(after_rejection(&mine, Some(&stored("r1", None)), at(0)).is_none());
        assert!(after_rejection(&mine, None, at(0)).is_none());
        assert!(matches!(
            after_rejection(&mine, Some(&stored("r2", None)), at(0)),
            Some(RefreshPlan::Adopt(_))
        ));
    }

    #[test]
    fn a_kept_rotation_is_presented_by_the_retry() {
        let old = Secret::new("r1");
        let kept = keep_rotation(Some(&stored("r1", Some(500))), &Secret::new("r2"))
            .expect("something was stored");
        assert!(
            matches!(plan_refresh(&old, Some(&kept), at(100)), RefreshPlan::Call(t) if t.expose() == "r2")
        );
        // Also when the wall clock has stepped back since.
        assert!(matches!(
            plan_refresh(&old, Some(&kept), at(99)),
            RefreshPlan::Call(t) if t.expose() == "r2"
        ));
        // After a rejection, a newer stored token whose access token is spent is presented.
        assert!(matches!(
            after_rejection(&old, Some(&stored("r2", Some(10))), at(20)),
            Some(RefreshPlan::Call(t)) if t.expose() == "r2"
        ));
        assert!(keep_rotation(None, &Secret::new("r2")).is_none());
    }
}
