//! A thread-safe wrapper: one lock around the core; each call applies one input and
//! returns, under the same lock, exactly the commands that input produced.

use crate::command::{AttemptId, Command, RefreshFailure, RequestId, RequestOptions, Timestamp};
use crate::config::Config;
use crate::coordinator::Coordinator;
use crate::credentials::Credentials;
use crate::error::{ConfigError, InputError};
use crate::input::Input;
use crate::stats::Stats;
use crate::sync::{Mutex, MutexGuard};

/// The commands one input produced, in the order the host must carry them out.
pub type Batch = Vec<Command>;

/// Why a [`SharedCoordinator`] call failed.
///
/// Exhaustive on purpose, like [`InputError`] (not `#[non_exhaustive]`): every binding
/// maps each case to its own status or error, so a new case is a contract change every
/// binding must handle, and adding one must fail to compile there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SharedError {
    /// The host misused the input; nothing changed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A thread panicked while holding the lock, so the state may be inconsistent. The
    /// coordinator refuses every further call: drop it and start a new session.
    #[error("coordinator lock poisoned by a panic")]
    Poisoned,
}

/// [`Coordinator`] behind a mutex, for hosts with many threads.
///
/// Every method takes `&self`, applies one input under the lock and returns that
/// input's [`Batch`]: the thread that caused a command is the one that runs it, and no
/// thread can take another's commands. No callback runs under the lock.
#[derive(Debug)]
pub struct SharedCoordinator {
    inner: Mutex<Coordinator>,
}

impl SharedCoordinator {
    /// A logged-out coordinator with `config`.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Ok(Self::from_coordinator(Coordinator::new(config)?))
    }

    /// Wraps an existing coordinator. Commands it still holds come out with the next
    /// call's batch.
    pub fn from_coordinator(coordinator: Coordinator) -> Self {
        SharedCoordinator {
            inner: Mutex::new(coordinator),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Coordinator>, SharedError> {
        self.inner.lock().map_err(|_| SharedError::Poisoned)
    }

    fn run<T>(
        &self,
        f: impl FnOnce(&mut Coordinator) -> Result<T, InputError>,
    ) -> Result<(T, Batch), SharedError> {
        let mut batch = Batch::new();
        let value = self.run_into(&mut batch, f)??;
        Ok((value, batch))
    }

    /// Runs `input` on the locked coordinator and appends exactly the commands it caused
    /// to `batch`, under the same lock. The allocation-free way to call the coordinator
    /// from many threads: keep one `batch` per thread, `clear()` it after carrying its
    /// commands out, and pass it again.
    ///
    /// ```
    /// use reauth::{Config, Credentials, RequestOptions, SharedCoordinator};
    ///
    /// let shared = SharedCoordinator::new(Config::default())?;
    /// let mut batch = Vec::with_capacity(16);
    /// shared.run_into(&mut batch, |core| core.login(0, Credentials::new("at")))??;
    /// let id = shared.run_into(&mut batch, |core| core.submit(1, RequestOptions::default()))??;
    /// assert_eq!(batch[0].request_id(), Some(id)); // its Send
    /// batch.clear();
    /// shared.run_into(&mut batch, |core| core.handle_response(2, id, 200))??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// `input` MUST apply at most one input: the batch is that input's commands.
    pub fn run_into<T>(
        &self,
        batch: &mut Batch,
        input: impl FnOnce(&mut Coordinator) -> T,
    ) -> Result<T, SharedError> {
        let mut core = self.lock()?;
        let value = input(&mut core);
        core.drain_commands_into(batch);
        Ok(value)
    }

    /// [`Coordinator::apply`] under the lock.
    pub fn apply(
        &self,
        now: Timestamp,
        input: Input,
    ) -> Result<(Option<RequestId>, Batch), SharedError> {
        self.run(|c| c.apply(now, input))
    }

    /// [`Coordinator::login`] under the lock.
    pub fn login(&self, now: Timestamp, credentials: Credentials) -> Result<Batch, SharedError> {
        self.run(|c| c.login(now, credentials)).map(|(_, b)| b)
    }

    /// [`Coordinator::submit`] under the lock: the new id and its batch.
    pub fn submit(
        &self,
        now: Timestamp,
        options: RequestOptions,
    ) -> Result<(RequestId, Batch), SharedError> {
        self.run(|c| c.submit(now, options))
    }

    /// [`Coordinator::handle_response`] under the lock.
    pub fn handle_response(
        &self,
        now: Timestamp,
        id: RequestId,
        status: u16,
    ) -> Result<Batch, SharedError> {
        self.run(|c| c.handle_response(now, id, status))
            .map(|(_, b)| b)
    }

    /// [`Coordinator::handle_refresh_succeeded`] under the lock.
    pub fn handle_refresh_succeeded(
        &self,
        now: Timestamp,
        attempt: AttemptId,
        credentials: Credentials,
    ) -> Result<Batch, SharedError> {
        self.run(|c| c.handle_refresh_succeeded(now, attempt, credentials))
            .map(|(_, b)| b)
    }

    /// [`Coordinator::handle_refresh_failed`] under the lock.
    pub fn handle_refresh_failed(
        &self,
        now: Timestamp,
        attempt: AttemptId,
        failure: RefreshFailure,
    ) -> Result<Batch, SharedError> {
        self.run(|c| c.handle_refresh_failed(now, attempt, failure))
            .map(|(_, b)| b)
    }

    /// [`Coordinator::handle_timeout`] under the lock.
    pub fn handle_timeout(&self, now: Timestamp) -> Result<Batch, SharedError> {
        self.run(|c| c.handle_timeout(now)).map(|(_, b)| b)
    }

    /// [`Coordinator::handle_transport_error`] under the lock.
    pub fn handle_transport_error(
        &self,
        now: Timestamp,
        id: RequestId,
    ) -> Result<Batch, SharedError> {
        self.run(|c| c.handle_transport_error(now, id))
            .map(|(_, b)| b)
    }

    /// [`Coordinator::cancel`] under the lock.
    pub fn cancel(&self, now: Timestamp, id: RequestId) -> Result<Batch, SharedError> {
        self.run(|c| c.cancel(now, id)).map(|(_, b)| b)
    }

    /// [`Coordinator::force_refresh`] under the lock.
    pub fn force_refresh(&self, now: Timestamp) -> Result<Batch, SharedError> {
        self.run(|c| c.force_refresh(now)).map(|(_, b)| b)
    }

    /// [`Coordinator::logout`] under the lock.
    pub fn logout(&self, now: Timestamp) -> Result<Batch, SharedError> {
        self.run(|c| c.logout(now)).map(|(_, b)| b)
    }

    /// [`Coordinator::begin_restore`] under the lock.
    pub fn begin_restore(&self, now: Timestamp) -> Result<Batch, SharedError> {
        self.run(|c| c.begin_restore(now)).map(|(_, b)| b)
    }

    /// [`Coordinator::restore_failed`] under the lock.
    pub fn restore_failed(&self, now: Timestamp) -> Result<Batch, SharedError> {
        self.run(|c| c.restore_failed(now)).map(|(_, b)| b)
    }

    /// [`Coordinator::poll_timeout`]: when to call `handle_timeout` next.
    pub fn poll_timeout(&self) -> Result<Option<Timestamp>, SharedError> {
        Ok(self.lock()?.poll_timeout())
    }

    /// A copy of the counters.
    pub fn stats(&self) -> Result<Stats, SharedError> {
        Ok(*self.lock()?.stats())
    }

    /// Runs `f` with the locked coordinator, for getters not mirrored here. Commands
    /// `f` causes are returned as its batch.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Coordinator) -> T,
    ) -> Result<(T, Batch), SharedError> {
        self.run(|c| Ok(f(c)))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_panic_under_the_lock_poisons_every_later_call() {
        let shared = Arc::new(SharedCoordinator::new(Config::default()).expect("valid config"));
        let s = Arc::clone(&shared);
        let joined = std::thread::spawn(move || {
            let _ = s.with(|_| panic!("simulated bug while holding the lock"));
        })
        .join();
        assert!(joined.is_err(), "the thread panicked");
        assert_eq!(
            shared.submit(1, RequestOptions::default()),
            Err(SharedError::Poisoned)
        );
        assert_eq!(shared.stats(), Err(SharedError::Poisoned));
        assert_eq!(
            shared.logout(2).expect_err("poisoned").to_string(),
            "coordinator lock poisoned by a panic"
        );
    }

    #[test]
    fn every_typed_method_applies_its_input_and_returns_its_batch() {
        use crate::command::{AttemptId, FailReason, LogoutReason};
        let shared = SharedCoordinator::new(
            Config::default()
                .with_max_retries(1)
                .with_max_wait_ms(50_000),
        )
        .expect("valid config");
        assert_eq!(shared.poll_timeout(), Ok(None));
        assert!(
            shared
                .login(0, Credentials::new("at").with_refresh_token("rt"))
                .expect("login")
                .is_empty()
        );
        let (a, sent) = shared.submit(1, RequestOptions::default()).expect("submit");
        assert!(matches!(sent.as_slice(), [Command::Send { id, .. }] if *id == a));
        let refresh = shared.handle_response(2, a, 401).expect("401");
        assert!(matches!(refresh.as_slice(), [Command::Refresh { .. }]));
        assert_eq!(shared.poll_timeout(), Ok(Some(2 + 30_000)));
        let waiting = shared
            .apply(
                3,
                Input::Submit {
                    options: RequestOptions::default(),
                },
            )
            .expect("apply");
        let b = waiting.0.expect("submit gives an id");
        assert!(waiting.1.is_empty(), "it waits for the refresh");
        assert!(shared.cancel(4, b).expect("cancel").is_empty());
        let backoff = shared
            .handle_refresh_failed(
                5,
                AttemptId(1),
                RefreshFailure::Transient {
                    retry_after_ms: None,
                },
            )
            .expect("transient");
        assert!(backoff.is_empty());
        let retry = shared.handle_timeout(10_000).expect("timeout");
        assert!(
            matches!(retry.as_slice(), [Command::Refresh { attempt, .. }] if *attempt == AttemptId(2))
        );
        let released = shared
            .handle_refresh_succeeded(10_001, AttemptId(2), Credentials::new("at-2"))
            .expect("adopted");
        assert!(matches!(
            released.as_slice(),
            [Command::StoreCredentials { .. }, Command::Replay { id, .. }] if *id == a
        ));
        assert!(shared.force_refresh(10_002).expect("force").is_empty());
        let (c, _) = shared
            .submit(10_003, RequestOptions::default())
            .expect("submit");
        let ended = shared.logout(10_004).expect("logout");
        assert_eq!(
            ended,
            [
                Command::Fail {
                    id: c,
                    reason: FailReason::LoggedOut
                },
                Command::Logout {
                    reason: LogoutReason::Requested
                }
            ]
        );
        assert_eq!(shared.stats().expect("stats").logouts, 1);
    }

    #[test]
    fn each_thread_gets_exactly_its_own_batch() {
        let shared = Arc::new(SharedCoordinator::new(Config::default()).expect("valid config"));
        shared
            .login(0, Credentials::new("at").with_refresh_token("rt"))
            .expect("login");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let s = Arc::clone(&shared);
                std::thread::spawn(move || {
                    (0..100)
                        .map(|_| {
                            let (id, batch) =
                                s.submit(1, RequestOptions::default()).expect("submit");
                            assert_eq!(batch.len(), 1);
                            assert_eq!(batch[0].request_id(), Some(id));
                            id
                        })
                        .count()
                })
            })
            .collect();
        let total: usize = handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .sum();
        assert_eq!(total, 800);
        assert_eq!(shared.stats().expect("stats").sent, 800);
    }
}
