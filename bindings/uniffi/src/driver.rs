//! The host driver (`reauth_host::Driver`) for the adapters, shaped for the cheapest
//! crossing: free functions on a numeric handle (a method on a UniFFI object costs a
//! second native call, to clone the object's pointer), primitive arguments (an optional
//! or a list is a buffer to allocate and free), and one `i64` back — the step packed as
//! `reauth_host::wire` documents. When its bit 7 is set, the step's other half (wakes,
//! a refresh to start, a logout, a new token) waits in a per-thread buffer: the same
//! thread fetches it with [`driver_take_more`] before its next call to any driver.
//!
//! `known` is the generation of the access token the caller already holds (0: none): an
//! own `Send` with that generation carries no text.
//!
//! An unknown handle is `UnknownDriver`; after [`driver_close`] every input is `Closed`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use reauth::{Generation, RequestId, RouteKey};
use reauth_host::{Driver, DriverError, Step, wire};

use crate::{
    Config, Credentials, FailReason, LogoutReason, ReauthError, RefreshFailure, Stats, attempt_id,
    request, signed, status, time,
};

static DRIVERS: LazyLock<RwLock<HashMap<u64, Arc<Driver>>>> = LazyLock::new(Default::default);
static NEXT: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static MORE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl From<DriverError> for ReauthError {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Closed => ReauthError::Closed,
            DriverError::Input(e) => e.into(),
            DriverError::Poisoned => ReauthError::Poisoned,
        }
    }
}

fn driver(handle: u64) -> Result<Arc<Driver>, ReauthError> {
    let drivers = DRIVERS.read().map_err(|_| ReauthError::Poisoned)?;
    drivers
        .get(&handle)
        .cloned()
        .ok_or(ReauthError::UnknownDriver(handle))
}

fn known(generation: i64) -> Generation {
    Generation(u64::try_from(generation).unwrap_or(0))
}

/// Packs `step`; stashes its other half for [`driver_take_more`] when it has one.
fn packed(step: &Step, id: Option<RequestId>, known: Generation) -> Result<i64, ReauthError> {
    if wire::needs_more(step, known) {
        MORE.with_borrow_mut(|more| {
            more.clear();
            wire::encode_more(step, known, more);
        });
    }
    wire::pack(step, id, known).ok_or_else(|| {
        ReauthError::InvalidArgument("request ids past 2^54 do not fit the packed step".into())
    })
}

/// A logged-out driver; its handle. `InvalidConfig` if a value is out of range.
#[uniffi::export(default(config))]
pub fn driver_new(config: Config) -> Result<u64, ReauthError> {
    let driver = Driver::new(config.to_core()?)?;
    let handle = NEXT.fetch_add(1, Ordering::Relaxed);
    DRIVERS
        .write()
        .map_err(|_| ReauthError::Poisoned)?
        .insert(handle, Arc::new(driver));
    Ok(handle)
}

/// Starts the driver's flight recorder for at least the last `capacity` inputs (fewer
/// than twice as many); 0 stops it.
#[uniffi::export]
pub fn driver_record(handle: u64, capacity: u32) -> Result<(), ReauthError> {
    Ok(driver(handle)?.record(capacity as usize)?)
}

/// The driver's flight recording as a transcript (JSON): it replays the incident in
/// every reauth replayer, and `explain_transcript` explains it. Empty steps when the
/// recorder is off.
#[uniffi::export]
pub fn driver_trace_json(handle: u64) -> Result<String, ReauthError> {
    let driver = driver(handle)?;
    let config = driver.with(|core| core.config().clone())?;
    let trace = driver.trace()?;
    Ok(serde_json::to_string(&trace.transcript(&config)).unwrap_or_default())
}

/// Frees the driver (after [`driver_close`]); an unknown handle is ignored.
#[uniffi::export]
pub fn driver_free(handle: u64) {
    if let Ok(mut drivers) = DRIVERS.write() {
        drivers.remove(&handle);
    }
}

/// The other half of the step this thread's last driver call returned with bit 7 set
/// (`reauth_host::wire`); empty if there is none.
#[uniffi::export]
pub fn driver_take_more() -> Vec<u8> {
    MORE.with_borrow_mut(std::mem::take)
}

/// A request wants to go out (`route` 0: none; else a key in 1..=4294967295, as
/// `route_key` and `default_route` make). The packed step carries its id.
#[uniffi::export]
pub fn driver_submit(
    handle: u64,
    now: i64,
    replayable: bool,
    refresh: bool,
    route: i64,
    known: i64,
) -> Result<i64, ReauthError> {
    let now = time(now)?;
    let mut options = reauth::RequestOptions::default()
        .with_replayable(replayable)
        .with_refresh(refresh);
    if route != 0 {
        let key = u32::try_from(route).ok().and_then(RouteKey::new);
        options = options.with_route(key.ok_or(ReauthError::InvalidRoute)?);
    }
    let (id, step) = driver(handle)?.submit(now, options)?;
    packed(&step, Some(id), self::known(known))
}

/// The HTTP status of request `id`'s last `Send`, without challenges.
#[uniffi::export]
pub fn driver_response(
    handle: u64,
    now: i64,
    id: i64,
    status: i32,
    known: i64,
) -> Result<i64, ReauthError> {
    driver_response_challenged(handle, now, id, status, Vec::new(), known)
}

/// The HTTP status of request `id`'s last `Send` with its `WWW-Authenticate` values: an
/// `insufficient_scope` refusal is the caller's answer (§12.4).
#[uniffi::export]
pub fn driver_response_challenged(
    handle: u64,
    now: i64,
    id: i64,
    status: i32,
    www_authenticate: Vec<String>,
    known: i64,
) -> Result<i64, ReauthError> {
    let (now, id, status) = (time(now)?, request(id)?, self::status(status)?);
    let step = driver(handle)?.response(now, id, status, &www_authenticate)?;
    packed(&step, None, self::known(known))
}

/// Request `id` ends without a response (its caller is gone): a transport error in
/// flight, a cancel waiting, nothing if it had ended.
#[uniffi::export]
pub fn driver_abandon(handle: u64, now: i64, id: i64) -> Result<i64, ReauthError> {
    let (now, id) = (time(now)?, request(id)?);
    let step = driver(handle)?.abandon(now, id)?;
    packed(&step, None, Generation(0))
}

/// Refresh `attempt` returned credentials (already stored, §12.2).
#[uniffi::export]
pub fn driver_refresh_succeeded(
    handle: u64,
    now: i64,
    attempt: i64,
    credentials: Arc<Credentials>,
) -> Result<i64, ReauthError> {
    let (now, attempt) = (time(now)?, attempt_id(attempt)?);
    let step = driver(handle)?.refresh_succeeded(now, attempt, credentials.0.clone())?;
    packed(&step, None, Generation(0))
}

/// Refresh `attempt` failed.
#[uniffi::export]
pub fn driver_refresh_failed(
    handle: u64,
    now: i64,
    attempt: i64,
    failure: RefreshFailure,
) -> Result<i64, ReauthError> {
    let (now, attempt) = (time(now)?, attempt_id(attempt)?);
    let step = driver(handle)?.refresh_failed(now, attempt, failure.to_core()?)?;
    packed(&step, None, Generation(0))
}

/// Time passed (call at [`driver_deadline`]).
#[uniffi::export]
pub fn driver_timeout(handle: u64, now: i64) -> Result<i64, ReauthError> {
    let step = driver(handle)?.timeout(time(now)?)?;
    packed(&step, None, Generation(0))
}

/// Starts (or replaces) the session. Refused credentials change nothing.
#[uniffi::export]
pub fn driver_login(
    handle: u64,
    now: i64,
    credentials: Arc<Credentials>,
) -> Result<i64, ReauthError> {
    let step = driver(handle)?.login(time(now)?, credentials.0.clone())?;
    packed(&step, None, Generation(0))
}

/// The user logs out.
#[uniffi::export]
pub fn driver_logout(handle: u64, now: i64) -> Result<i64, ReauthError> {
    let step = driver(handle)?.logout(time(now)?)?;
    packed(&step, None, Generation(0))
}

/// The app knows the token is bad: the next request refreshes.
#[uniffi::export]
pub fn driver_force_refresh(handle: u64, now: i64) -> Result<i64, ReauthError> {
    let step = driver(handle)?.force_refresh(time(now)?)?;
    packed(&step, None, Generation(0))
}

/// Ends the driver's service: every waiter is woken `closed` (wake kind 5); later inputs
/// are `Closed`. Idempotent.
#[uniffi::export]
pub fn driver_close(handle: u64, now: i64) -> Result<i64, ReauthError> {
    let step = driver(handle)?.close(time(now)?)?;
    packed(&step, None, Generation(0))
}

/// When to call [`driver_timeout`] next; None: no timer.
#[uniffi::export]
pub fn driver_deadline(handle: u64) -> Result<Option<i64>, ReauthError> {
    Ok(driver(handle)?.deadline()?.map(signed))
}

/// The coordinator's counters.
#[uniffi::export]
pub fn driver_stats(handle: u64) -> Result<Stats, ReauthError> {
    Ok(driver(handle)?.with(|core| Stats::from(*core.stats()))?)
}

/// Whether a session exists.
#[uniffi::export]
pub fn driver_is_logged_in(handle: u64) -> Result<bool, ReauthError> {
    Ok(driver(handle)?.with(reauth::Coordinator::is_logged_in)?)
}

/// The configuration in force.
#[uniffi::export]
pub fn driver_config(handle: u64) -> Result<Config, ReauthError> {
    Ok(driver(handle)?.with(|core| Config::from_core(core.config()))?)
}

/// The fail reasons in the order of their wire codes (`reauth_host::wire::fail_code`).
#[uniffi::export]
pub fn wire_fail_reasons() -> Vec<FailReason> {
    (0..=u8::MAX)
        .map_while(wire::fail_reason)
        .map(FailReason::from)
        .collect()
}

/// The logout reasons in the order of their wire codes.
#[uniffi::export]
pub fn wire_logout_reasons() -> Vec<LogoutReason> {
    (0..=u8::MAX)
        .map_while(wire::logout_reason)
        .map(LogoutReason::from)
        .collect()
}
