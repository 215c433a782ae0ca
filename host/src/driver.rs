//! The routing every adapter used to write by hand: which waiting caller gets which
//! command, what a refusal with `insufficient_scope` does (§12.4), how a request that ends
//! without a response is reported, and `close()`.
//!
//! A [`Driver`] owns the coordinator behind one short lock (held only while the core
//! applies one input — never across I/O, a foreign call or a callback) and turns each
//! input's batch into a [`Step`]: what the request the input was about does now
//! ([`Own`]), which *other* requests to wake and with what ([`Wake`]), a refresh to start,
//! a logout to carry out, and whether the timer must look at the deadline again. The
//! adapter keeps only what its language must do: the waiting (a condition, a future, a
//! continuation), the timer, the HTTP client, the store's I/O.
//!
//! The request an input is about gets its command back from the same call, so a request
//! that never waits (the steady state) needs no waiter at all. A request told
//! [`Own::Wait`] registers one after the call returns; a wake for it can come from another
//! thread before that, so an adapter keeps a wake for an id it does not know yet until the
//! waiter registers (ids are never reused). Each request's commands are causal — after a
//! `Send`, the next command for it needs its response first — so delivering steps outside
//! the lock keeps every request's commands in order.
//!
//! `StoreCredentials` does not appear in a step: reauth's adapters store a refresh result
//! under the store's lock before reporting it (contract §12.2).

use std::sync::{Mutex, MutexGuard};

use rustc_hash::FxHashSet;

use reauth::{
    AttemptId, Command, Config, ConfigError, Coordinator, Credentials, FailReason, Generation,
    InputError, LogoutReason, RefreshFailure, RequestId, RequestOptions, Secret, Timestamp,
};

use crate::challenge::bearer_error;

/// What the request an input was about does now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Own {
    /// Wait for a [`Wake`]: it waits for a refresh (or, for inputs about no request, there
    /// is nothing to do).
    Wait,
    /// Send it (again) with this bearer token, then report the response.
    Send {
        /// The bearer token.
        access_token: Secret,
        /// Its generation.
        generation: Generation,
    },
    /// Hand the caller the response it got. Terminal.
    Complete,
    /// Fail the caller's request. Terminal.
    Fail(FailReason),
    /// The response is the caller's answer as it is — a refusal with an RFC 6750
    /// `insufficient_scope` challenge (contract §12.4): no refresh, the request ended here
    /// (counted as cancelled). Terminal.
    CallersAnswer,
}

/// What a waiting request is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Send it (again) with this bearer token, then report the response.
    Send {
        /// The bearer token.
        access_token: Secret,
        /// Its generation.
        generation: Generation,
    },
    /// Hand the caller the response it got. Terminal.
    Complete,
    /// Fail the caller's request. Terminal.
    Fail(FailReason),
    /// The driver was closed while it waited. Terminal.
    Closed,
}

/// What one input asks of the adapter, in this order: [`logout`](Step::logout) (clear the
/// store, then the app's hook — outside any lock — so that a caller who sees its request
/// fail finds the session over), [`wakes`](Step::wakes) (each to its waiter),
/// [`refreshes`](Step::refreshes) (each on a worker), re-read the deadline if
/// [`deadline_changed`](Step::deadline_changed), and act on [`own`](Step::own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The request the input was about (`submit`, `response`): what it does now.
    /// [`Own::Wait`] for inputs about no request.
    pub own: Own,
    /// Other requests' commands, in the order the core produced them.
    pub wakes: Vec<(RequestId, Wake)>,
    /// `Refresh` commands: call the token endpoint (contract §12.2) and report the result
    /// with the attempt. At most one in practice.
    pub refreshes: Vec<(AttemptId, Secret)>,
    /// The session ended: clear the store, tell the app.
    pub logout: Option<LogoutReason>,
    /// The core's next deadline moved: the timer must read [`Driver::deadline`] again.
    pub deadline_changed: bool,
}

impl Step {
    fn new() -> Self {
        Step {
            own: Own::Wait,
            wakes: Vec::new(),
            refreshes: Vec::new(),
            logout: None,
            deadline_changed: false,
        }
    }

    /// Whether the step asks nothing of anyone but the request it is about.
    pub fn is_own_only(&self) -> bool {
        self.wakes.is_empty()
            && self.refreshes.is_empty()
            && self.logout.is_none()
            && !self.deadline_changed
    }
}

/// Why a [`Driver`] input failed. Exhaustive on purpose, like the core's errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// [`Driver::close`] was called: the request was not sent, or its response dropped.
    #[error("reauth is closed")]
    Closed,
    /// The host misused the input; nothing changed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A thread panicked inside the driver; every further call fails.
    #[error("the driver's lock was poisoned by a panic")]
    Poisoned,
}

/// The coordinator and the routing of its commands, for an adapter with many threads
/// (module docs). Every method applies at most one input under the lock.
#[derive(Debug)]
pub struct Driver {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    core: Coordinator,
    batch: Vec<Command>,
    /// Requests submitted and not ended: each will get exactly one terminal outcome. Ids
    /// are the core's, never chosen by a caller, so a fast hash is enough.
    open: FxHashSet<RequestId>,
    closed: bool,
    /// The deadline a step last reported as changed.
    deadline: Option<Timestamp>,
}

impl Driver {
    /// A logged-out driver.
    ///
    /// # Errors
    ///
    /// The core's [`ConfigError`] for a config out of range.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Ok(Driver {
            inner: Mutex::new(Inner {
                core: Coordinator::new(config)?,
                batch: Vec::with_capacity(16),
                open: FxHashSet::default(),
                closed: false,
                deadline: None,
            }),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, DriverError> {
        self.inner.lock().map_err(|_| DriverError::Poisoned)
    }

    fn open(&self) -> Result<MutexGuard<'_, Inner>, DriverError> {
        let inner = self.lock()?;
        if inner.closed {
            return Err(DriverError::Closed);
        }
        Ok(inner)
    }

    /// A request wants to go out: its id, and what it does now ([`Own::Send`] in the
    /// steady state; [`Own::Wait`] while a refresh runs).
    ///
    /// # Errors
    ///
    /// [`DriverError::Closed`] after [`close`](Self::close).
    pub fn submit(
        &self,
        now: Timestamp,
        options: RequestOptions,
    ) -> Result<(RequestId, Step), DriverError> {
        let mut inner = self.open()?;
        let id = inner.core.submit(now, options)?;
        inner.open.insert(id);
        Ok((id, inner.step(Some(id))))
    }

    /// The response to request `id`'s last `Send`: HTTP `status`, with the values of its
    /// `WWW-Authenticate` headers (read only when `status` is a refresh status). A
    /// refusal whose challenge is `insufficient_scope` is [`Own::CallersAnswer`]
    /// (§12.4).
    ///
    /// # Errors
    ///
    /// [`DriverError::Closed`] after [`close`](Self::close) (the request was cancelled
    /// then); the core's [`InputError`] for an id not in flight.
    pub fn response<S: AsRef<str>>(
        &self,
        now: Timestamp,
        id: RequestId,
        status: u16,
        www_authenticate: &[S],
    ) -> Result<Step, DriverError> {
        let mut inner = self.open()?;
        if !www_authenticate.is_empty()
            && inner.core.config().is_refresh_status(status)
            && bearer_error(www_authenticate.iter().map(AsRef::as_ref))
                .is_some_and(crate::BearerError::is_callers_answer)
        {
            inner.core.cancel(now, id)?;
            inner.open.remove(&id);
            let mut step = inner.step(None);
            step.own = Own::CallersAnswer;
            return Ok(step);
        }
        inner.core.handle_response(now, id, status)?;
        Ok(inner.step(Some(id)))
    }

    /// Request `id` ends without a response: a transport error if it was in flight (rule
    /// 17), a cancel if it waited; nothing if it had ended (or the driver is closed).
    /// Its own outcome is not routed: its caller is gone.
    ///
    /// # Errors
    ///
    /// Only [`DriverError::Poisoned`].
    pub fn abandon(&self, now: Timestamp, id: RequestId) -> Result<Step, DriverError> {
        let mut inner = self.lock()?;
        if inner.closed || !inner.open.contains(&id) {
            return Ok(Step::new());
        }
        // An open request is in flight or waiting: neither input is refused for it (only
        // a `now` past the end of the clock is, and that changes nothing).
        if inner.core.is_in_flight(id) {
            inner.core.handle_transport_error(now, id)?;
        } else {
            inner.core.cancel(now, id)?;
        }
        inner.open.remove(&id);
        let mut step = inner.step(Some(id));
        step.own = Own::Wait;
        Ok(step)
    }

    /// The token endpoint answered `Refresh { attempt }` with `credentials`.
    ///
    /// # Errors
    ///
    /// [`DriverError::Closed`]; the core's [`InputError`] (invalid credentials, an
    /// unknown attempt).
    pub fn refresh_succeeded(
        &self,
        now: Timestamp,
        attempt: AttemptId,
        credentials: Credentials,
    ) -> Result<Step, DriverError> {
        self.input(|core| core.handle_refresh_succeeded(now, attempt, credentials))
    }

    /// `Refresh { attempt }` failed.
    ///
    /// # Errors
    ///
    /// [`DriverError::Closed`]; the core's [`InputError`] for an unknown attempt.
    pub fn refresh_failed(
        &self,
        now: Timestamp,
        attempt: AttemptId,
        failure: RefreshFailure,
    ) -> Result<Step, DriverError> {
        self.input(|core| core.handle_refresh_failed(now, attempt, failure))
    }

    /// Time passed: call it at [`deadline`](Self::deadline).
    ///
    /// # Errors
    ///
    /// [`DriverError::Closed`].
    pub fn timeout(&self, now: Timestamp) -> Result<Step, DriverError> {
        self.input(|core| core.handle_timeout(now))
    }

    /// Starts (or replaces) the session with credentials the app obtained. Refused
    /// credentials change nothing; store them only after this returned `Ok`.
    ///
    /// # Errors
    ///
    /// [`DriverError::Closed`]; the core's [`InputError::InvalidCredentials`].
    pub fn login(&self, now: Timestamp, credentials: Credentials) -> Result<Step, DriverError> {
        self.input(|core| core.login(now, credentials))
    }

    /// The host starts reading its store (rule 18): until [`login`](Self::login) or
    /// [`restore_failed`](Self::restore_failed), submitted requests wait instead of
    /// failing `NotLoggedIn`. For a host whose store answers asynchronously.
    ///
    /// # Errors
    ///
    /// [`DriverError::Closed`].
    pub fn begin_restore(&self, now: Timestamp) -> Result<Step, DriverError> {
        self.input(|core| core.begin_restore(now))
    }

    /// The store held nothing usable (rule 18): the requests that waited fail
    /// `NotLoggedIn`.
    ///
    /// # Errors
    ///
    /// [`DriverError::Closed`].
    pub fn restore_failed(&self, now: Timestamp) -> Result<Step, DriverError> {
        self.input(|core| core.restore_failed(now))
    }

    /// The user logs out.
    ///
    /// # Errors
    ///
    /// [`DriverError::Closed`].
    pub fn logout(&self, now: Timestamp) -> Result<Step, DriverError> {
        self.input(|core| core.logout(now))
    }

    /// The app knows the token is bad: the next request refreshes.
    ///
    /// # Errors
    ///
    /// [`DriverError::Closed`].
    pub fn force_refresh(&self, now: Timestamp) -> Result<Step, DriverError> {
        self.input(|core| core.force_refresh(now))
    }

    /// Ends the driver's service: every open request is cancelled in the core; those
    /// waiting are woken with [`Wake::Closed`], those in flight get
    /// [`DriverError::Closed`] when their response is reported; every later input fails
    /// with it. Idempotent (a second call wakes nobody).
    ///
    /// # Errors
    ///
    /// Only [`DriverError::Poisoned`].
    pub fn close(&self, now: Timestamp) -> Result<Step, DriverError> {
        let mut inner = self.lock()?;
        let mut step = Step::new();
        if inner.closed {
            return Ok(step);
        }
        inner.closed = true;
        let mut open: Vec<RequestId> = inner.open.drain().collect();
        open.sort_unstable();
        for id in open {
            let waiting = !inner.core.is_in_flight(id);
            // Open, so the cancel is accepted (it emits nothing); were it refused, the
            // request would have ended already and nobody waits for it.
            if inner.core.cancel(now, id).is_ok() && waiting {
                step.wakes.push((id, Wake::Closed));
            }
        }
        inner.batch.clear();
        Ok(step)
    }

    /// The core's next deadline: call [`timeout`](Self::timeout) then. `None`: no timer.
    ///
    /// # Errors
    ///
    /// Only [`DriverError::Poisoned`].
    pub fn deadline(&self) -> Result<Option<Timestamp>, DriverError> {
        let mut inner = self.lock()?;
        if inner.closed {
            return Ok(None);
        }
        let deadline = inner.core.poll_timeout();
        inner.deadline = deadline;
        Ok(deadline)
    }

    /// Whether the driver was closed.
    pub fn is_closed(&self) -> bool {
        self.lock().map_or(true, |inner| inner.closed)
    }

    /// Runs `f` on the coordinator under the lock, for reading (stats, state); an input
    /// applied there would not be routed, so `f` gets a shared reference only.
    ///
    /// # Errors
    ///
    /// Only [`DriverError::Poisoned`].
    pub fn with<T>(&self, f: impl FnOnce(&Coordinator) -> T) -> Result<T, DriverError> {
        Ok(f(&self.lock()?.core))
    }

    /// Starts the core's flight recorder for the last `capacity` inputs (0 stops it;
    /// [`Coordinator::record`]).
    ///
    /// # Errors
    ///
    /// Only [`DriverError::Poisoned`].
    #[cfg(feature = "trace")]
    pub fn record(&self, capacity: usize) -> Result<(), DriverError> {
        self.lock()?.core.record(capacity);
        Ok(())
    }

    /// What the flight recorder holds ([`Coordinator::trace`]).
    ///
    /// # Errors
    ///
    /// Only [`DriverError::Poisoned`].
    #[cfg(feature = "trace")]
    pub fn trace(&self) -> Result<reauth::trace::Trace, DriverError> {
        self.with(Coordinator::trace)
    }

    fn input(
        &self,
        f: impl FnOnce(&mut Coordinator) -> Result<(), InputError>,
    ) -> Result<Step, DriverError> {
        let mut inner = self.open()?;
        f(&mut inner.core)?;
        Ok(inner.step(None))
    }
}

impl Inner {
    /// Routes the batch the last input produced: `subject`'s command to [`Step::own`],
    /// every other request's to [`Step::wakes`].
    fn step(&mut self, subject: Option<RequestId>) -> Step {
        let mut step = Step::new();
        self.core.drain_commands_into(&mut self.batch);
        for command in self.batch.drain(..) {
            let (id, wake) = match command {
                Command::Send {
                    id,
                    access_token,
                    generation,
                }
                | Command::Replay {
                    id,
                    access_token,
                    generation,
                } => (
                    id,
                    Wake::Send {
                        access_token,
                        generation,
                    },
                ),
                Command::Complete { id } => (id, Wake::Complete),
                Command::Fail { id, reason } => (id, Wake::Fail(reason)),
                Command::Refresh {
                    attempt,
                    refresh_token,
                } => {
                    step.refreshes.push((attempt, refresh_token));
                    continue;
                }
                // Stored under the store's lock before the refresh was reported (§12.2).
                Command::StoreCredentials { .. } => continue,
                Command::Logout { reason } => {
                    step.logout = Some(reason);
                    continue;
                }
            };
            if matches!(wake, Wake::Complete | Wake::Fail(_)) {
                self.open.remove(&id);
            }
            match wake {
                Wake::Send {
                    access_token,
                    generation,
                } if Some(id) == subject => {
                    step.own = Own::Send {
                        access_token,
                        generation,
                    };
                }
                Wake::Complete if Some(id) == subject => step.own = Own::Complete,
                Wake::Fail(reason) if Some(id) == subject => step.own = Own::Fail(reason),
                wake => step.wakes.push((id, wake)),
            }
        }
        let deadline = self.core.poll_timeout();
        if deadline != self.deadline {
            self.deadline = deadline;
            step.deadline_changed = true;
        }
        step
    }
}
