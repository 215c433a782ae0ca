//! The canonical hash of the machine's state (for the model checker's state space).

use std::hash::{Hash, Hasher};

use super::*;

// For the model checker (its state space); not part of the documented API.
#[doc(hidden)]
impl Hash for Coordinator {
    /// Hashes the behavioural state canonically: the clock, the counters that name future
    /// ids, the session (generations, deadlines, cycle, window, waiting order) and the
    /// open requests. Statistics, undrained commands and token texts are left out, and so
    /// are request ids: the open requests go in as a multiset of their records, so two
    /// coordinators that differ only by a renaming of open requests hash alike (requests
    /// are interchangeable — a model checker's symmetry reduction).
    fn hash<H: Hasher>(&self, state: &mut H) {
        let e = &self.engine;
        (e.now, e.next_request, e.next_generation, e.next_attempt).hash(state);
        let hash_waiting = |waiting: &WaitList, state: &mut H| {
            let mut link = waiting.head;
            while let Some(r) = link.and_then(|l| e.requests.get(l.id())) {
                let RequestState::Waiting { deadline, next, .. } = r.state else {
                    break;
                };
                let t = &r.ticket;
                (
                    deadline,
                    t.replayable,
                    t.refresh,
                    t.progress,
                    t.replays,
                    t.route,
                )
                    .hash(state);
                link = next;
            }
        };
        match &self.phase {
            Phase::LoggedOut => 0u8.hash(state),
            Phase::Restoring(waiting) => {
                2u8.hash(state);
                hash_waiting(waiting, state);
            }
            Phase::LoggedIn(s) => {
                1u8.hash(state);
                (s.generation, s.first_generation, s.refresh_at, s.bad).hash(state);
                // The token's age matters only while it is below `min_token_age_ms`
                // (rule 7), so older ages hash alike.
                let age = (e.now - s.received_at).min(e.config.min_token_age_ms);
                let expires = s.refresh_token.is_none().then_some(s.expires_at);
                (age, expires).hash(state);
                let refresh = s.refresh_token.as_ref().map(|_| s.refresh_token_from);
                (refresh, s.cycle, s.adoptable_from, &s.window).hash(state);
                (s.counted_start, &s.refusing).hash(state);
                hash_waiting(&s.waiting, state);
            }
        }
        let records = e.requests.iter().fold(0u64, |sum, (_, r)| {
            let mut h = std::hash::DefaultHasher::new();
            let t = &r.ticket;
            (t.replayable, t.refresh, t.progress, t.replays, t.route).hash(&mut h);
            match r.state {
                RequestState::InFlight { generation } => generation.hash(&mut h),
                RequestState::Waiting { deadline, .. } => (u64::MAX, deadline).hash(&mut h),
            }
            sum.wrapping_add(h.finish())
        });
        (e.requests.len(), records).hash(state);
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{Hash, Hasher};

    use crate::{Config, Coordinator, Credentials, RequestOptions};

    fn digest(core: &Coordinator) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        core.hash(&mut h);
        h.finish()
    }

    /// Logs in with `rt-1`, then adopts two refreshes; `rotations[i]` says whether the
    /// i-th result brings a new refresh token.
    fn refreshed(rotations: [bool; 2]) -> Coordinator {
        let mut core = Coordinator::new(Config::default()).expect("valid");
        core.login(0, Credentials::new("at-1").with_refresh_token("rt-1"))
            .expect("login");
        for (i, rotate) in rotations.into_iter().enumerate() {
            core.force_refresh(1).expect("force_refresh");
            let id = core.submit(1, RequestOptions::default()).expect("submit");
            let attempt = core.active_attempt().expect("a refresh runs");
            let mut credentials = Credentials::new(format!("at-{}", i + 2));
            if rotate {
                credentials = credentials.with_refresh_token(format!("rt-{}", i + 2));
            }
            core.handle_refresh_succeeded(2, attempt, credentials)
                .expect("adopted");
            core.handle_response(3, id, 200).expect("200");
            core.drain_commands().for_each(drop);
        }
        core
    }

    #[test]
    fn hash_tells_which_credentials_brought_the_refresh_token() {
        // Same history shape; the refresh token came with the login in one and with the
        // first refresh in the other, so the states differ (G8 depends on it).
        let kept = refreshed([false, false]);
        let rotated_once = refreshed([true, false]);
        assert_ne!(digest(&kept), digest(&rotated_once));
        // Token texts are not hashed: the same shape with other texts hashes alike.
        assert_eq!(digest(&refreshed([true, false])), digest(&rotated_once));
    }

    /// Rule 7 reads a token's age only below `min_token_age_ms` (500 ms by default): at
    /// the same time, tokens 400 and 300 ms old give different states; 1,000 and 700 ms
    /// old, the same.
    #[test]
    fn hash_reads_the_age_of_a_young_token_only() {
        let at = |received: u64, now: u64| {
            let mut core = Coordinator::new(Config::default()).expect("valid");
            core.handle_timeout(received).expect("time passes");
            core.login(received, Credentials::new("at").with_refresh_token("rt"))
                .expect("login");
            core.handle_timeout(now).expect("time passes");
            core.drain_commands().for_each(drop);
            digest(&core)
        };
        assert_ne!(at(200, 600), at(300, 600));
        assert_eq!(at(0, 1_000), at(300, 1_000));
    }
}
