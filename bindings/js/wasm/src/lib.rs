//! reauth for JavaScript: the core ([`reauth::Coordinator`]) and the host's half of the
//! contract ([`reauth_host`]: the [`Driver`], the token endpoint, the store recipe, routes,
//! challenges) compiled to `wasm32-unknown-unknown` behind a small numeric ABI. The npm
//! package in `bindings/js` embeds the `.wasm` and decodes it in `src/native.js`; nothing
//! here imports anything from JavaScript.
//!
//! **Why not wasm-bindgen.** Every call here takes and returns numbers (`f64`, `u32`,
//! `i32`): a crossing costs what a JavaScript call costs, with no glue object per call
//! and no generated code to pin. Text goes through two buffers in linear memory:
//!
//! - **in**: JavaScript asks for room with [`reauth_in`] and writes every string argument
//!   of the next call there, back to back, as UTF-8; the call gets their byte lengths
//!   (`-1` for an absent optional one).
//! - **out**: a call that returns more than a number writes it to the out buffer
//!   ([`reauth_out_ptr`], [`reauth_out_len`]) — the commands of an input, a step's bytes,
//!   a token answer — in the encodings documented at each function.
//!
//! **Errors.** A call returns a number ≥ 0 on success. On failure it returns `-1` and the
//! out buffer holds `kind`, a newline, and the message (the core's text): `kind` is the
//! transcripts' snake_case name of an input error (`unknown_request`, …), `config`,
//! `closed`, `invalid_argument`, `invalid_transcript` or `transcript_mismatch`. A failed
//! input changes nothing.
//!
//! **Numbers.** Times, ids, generations and attempts cross as `f64` holding an integer
//! (the core's clock ends at 2^53 − 1 ms, and its ids never get near 2^53); JavaScript
//! checks they are non-negative integers before calling. An optional argument is "none"
//! when negative; an optional result is [`NONE`] (`-2`), never `-1` (the error).
//!
//! A panic cannot unwind out of wasm32: it traps, and the JavaScript side turns the trap
//! into an error and refuses every later call (the module's state may be half-changed).

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use reauth::{
    AttemptId, Command, Config, Coordinator, Credentials, FailReason, Generation, InputError,
    LogoutReason, RefreshFailure, RequestId, RequestOptions, RouteKey, Secret, Timestamp,
};
use reauth_host::wire;
use reauth_host::{BearerError, ClientAuth, Driver, DriverError, StoredCredentials, TokenEndpoint};

pub mod buffers;
pub mod encode;

use buffers::{Args, Out};

/// What a function with an optional result returns for "none" (`-1` is an error).
pub const NONE: f64 = -2.0;

/// Command kinds in an encoded batch ([`encode::commands`]).
pub mod kind {
    /// `Send { id, access_token, generation }`.
    pub const SEND: u8 = 1;
    /// `Replay { id, access_token, generation }`.
    pub const REPLAY: u8 = 2;
    /// `Refresh { attempt, refresh_token }`.
    pub const REFRESH: u8 = 3;
    /// `StoreCredentials { credentials, generation, expires_at }`.
    pub const STORE: u8 = 4;
    /// `Complete { id }`.
    pub const COMPLETE: u8 = 5;
    /// `Fail { id, reason }`.
    pub const FAIL: u8 = 6;
    /// `Logout { reason }`.
    pub const LOGOUT: u8 = 7;
}

/// The error of a call, as the out buffer carries it.
#[derive(Debug)]
pub struct Error {
    kind: &'static str,
    message: String,
}

impl Error {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    fn argument(message: impl Into<String>) -> Self {
        Error::new("invalid_argument", message)
    }
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::new(e.kind(), e.to_string())
    }
}

impl From<DriverError> for Error {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Input(e) => e.into(),
            DriverError::Closed => Error::new("closed", e.to_string()),
            DriverError::Poisoned => Error::new("poisoned", e.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Everything this module keeps between calls (one JavaScript thread per instance).
#[derive(Default)]
struct State {
    input: Vec<u8>,
    out: Out,
    cores: Slots<Coordinator>,
    drivers: Slots<Driver>,
}

/// Objects JavaScript holds by number (1-based; 0 is never a handle).
struct Slots<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slots<T> {
    fn insert(&mut self, value: T) -> u32 {
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index] = Some(value);
                index
            }
            None => {
                self.slots.push(Some(value));
                self.slots.len() - 1
            }
        };
        u32::try_from(index + 1).unwrap_or(u32::MAX)
    }

    fn get(&mut self, handle: u32) -> Result<&mut T> {
        (handle as usize)
            .checked_sub(1)
            .and_then(|i| self.slots.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or_else(|| Error::argument(format!("unknown handle {handle} (freed?)")))
    }

    fn remove(&mut self, handle: u32) {
        if let Some(i) = (handle as usize).checked_sub(1)
            && let Some(slot) = self.slots.get_mut(i)
            && slot.take().is_some()
        {
            self.free.push(i);
        }
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Runs `f` on the state; its error goes to the out buffer and the call returns -1.
fn run(f: impl FnOnce(&mut State) -> Result<f64>) -> f64 {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        state.out.clear();
        match f(&mut state) {
            Ok(value) => value,
            Err(e) => {
                state.out.clear();
                state.out.bytes(e.kind.as_bytes());
                state.out.bytes(b"\n");
                state.out.bytes(e.message.as_bytes());
                -1.0
            }
        }
    })
}

fn time(now: f64) -> Timestamp {
    // JavaScript passes a non-negative integer; a value past the clock's end is refused
    // by the core (InvalidTime). `as` saturates.
    now as u64
}

fn optional(value: f64) -> Option<u64> {
    (value >= 0.0).then_some(value as u64)
}

fn wall(ms: f64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0.0) as u64)
}

fn wall_ms(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}

/// A request's options as `submit` takes them (`route` 0: none).
fn request_options(replayable: u32, refresh: u32, route: u32) -> RequestOptions {
    let options = RequestOptions::default()
        .with_replayable(replayable != 0)
        .with_refresh(refresh != 0);
    match RouteKey::new(route) {
        Some(route) => options.with_route(route),
        None => options,
    }
}

/// An HTTP status as the core takes it; beyond `u16` an argument error.
fn http_status(status: u32) -> Result<u16> {
    u16::try_from(status).map_err(|_| Error::argument(format!("invalid http status {status}")))
}

/// `count` `WWW-Authenticate` values, each written with its `u32` length in front.
fn challenge_values<'a>(args: &mut Args<'a>, count: u32) -> Result<Vec<&'a str>> {
    (0..count)
        .map(|_| args.prefixed("a WWW-Authenticate value"))
        .collect()
}

fn config(json: &str) -> Result<Config> {
    serde_json::from_str(json).map_err(|e| Error::new("config", e.to_string()))
}

fn credentials(args: &mut Args<'_>, at: i32, rt: i32, expires_in_ms: f64) -> Result<Credentials> {
    let mut c = Credentials::new(args.text(at, "the access token")?);
    if rt >= 0 {
        c.refresh_token = Some(Secret::new(args.text(rt, "the refresh token")?));
    }
    c.expires_in_ms = optional(expires_in_ms);
    Ok(c)
}

fn stored(
    args: &mut Args<'_>,
    at: i32,
    rt: i32,
    expires_at: f64,
) -> Result<Option<StoredCredentials>> {
    if at < 0 {
        return Ok(None);
    }
    let access_token = Secret::new(args.text(at, "the stored access token")?);
    let refresh_token = if rt >= 0 {
        Some(Secret::new(args.text(rt, "the stored refresh token")?))
    } else {
        None
    };
    Ok(Some(StoredCredentials {
        access_token,
        refresh_token,
        expires_at: (expires_at >= 0.0).then(|| wall(expires_at)),
    }))
}

// ----- memory ---------------------------------------------------------------------------

/// Room for `len` bytes of string arguments; returns where to write them. Valid until the
/// next call (which may grow the memory: JavaScript takes a fresh view after each call).
#[unsafe(no_mangle)]
pub extern "C" fn reauth_in(len: u32) -> *mut u8 {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        let input = &mut state.input;
        input.clear();
        input.resize(len as usize, 0);
        input.as_mut_ptr()
    })
}

/// Where the last call's out buffer starts.
#[unsafe(no_mangle)]
pub extern "C" fn reauth_out_ptr() -> *const u8 {
    STATE.with(|state| state.borrow().out.as_ptr())
}

/// How many bytes the last call wrote to the out buffer.
#[unsafe(no_mangle)]
pub extern "C" fn reauth_out_len() -> u32 {
    STATE.with(|state| u32::try_from(state.borrow().out.len()).unwrap_or(u32::MAX))
}

// ----- the core -------------------------------------------------------------------------

/// A coordinator from a config in the transcripts' JSON (`{"max_retries": 3, …}`, every
/// field optional); returns its handle.
#[unsafe(no_mangle)]
pub extern "C" fn core_new(config_len: i32) -> f64 {
    run(|s| {
        let config = config(Args::new(&s.input).text(config_len, "the config")?)?;
        let core = Coordinator::new(config).map_err(|e| Error::new("config", e.to_string()))?;
        Ok(f64::from(s.cores.insert(core)))
    })
}

#[cfg(feature = "tools")]
/// A coordinator resumed from a flight recording's `start` (JSON); returns its handle.
#[unsafe(no_mangle)]
pub extern "C" fn core_resume(config_len: i32, start_len: i32) -> f64 {
    run(|s| {
        let mut args = Args::new(&s.input);
        let config = config(args.text(config_len, "the config")?)?;
        let start: reauth::trace::Start = serde_json::from_str(args.text(start_len, "start")?)
            .map_err(|e| Error::new("invalid_transcript", e.to_string()))?;
        let core = Coordinator::resume(config, &start)
            .map_err(|e| Error::new("invalid_transcript", e.to_string()))?;
        Ok(f64::from(s.cores.insert(core)))
    })
}

/// Frees a coordinator; an unknown handle is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn core_free(handle: u32) {
    STATE.with(|state| state.borrow_mut().cores.remove(handle));
}

/// Applies one input to a coordinator and writes its batch (or its error) out.
fn core_input(
    handle: u32,
    input: impl FnOnce(&mut Coordinator, &mut Args<'_>) -> Result<f64>,
) -> f64 {
    run(|s| {
        let State {
            input: bytes,
            out,
            cores,
            ..
        } = s;
        let core = cores.get(handle)?;
        let value = input(core, &mut Args::new(bytes))?;
        encode::commands(core.drain_commands(), out);
        Ok(value)
    })
}

/// `login(now, credentials)`: the tokens in the in buffer (access, then refresh if
/// `rt_len` ≥ 0); `expires_in_ms` < 0 for none. The commands go out (see
/// [`encode::commands`]).
#[unsafe(no_mangle)]
pub extern "C" fn core_login(
    handle: u32,
    now: f64,
    at_len: i32,
    rt_len: i32,
    expires_in_ms: f64,
) -> f64 {
    core_input(handle, |core, args| {
        let c = credentials(args, at_len, rt_len, expires_in_ms)?;
        core.login(time(now), c)?;
        Ok(0.0)
    })
}

/// `submit(now, options)`: `route` 0 for none. Returns the request id.
#[unsafe(no_mangle)]
pub extern "C" fn core_submit(
    handle: u32,
    now: f64,
    replayable: u32,
    refresh: u32,
    route: u32,
) -> f64 {
    core_input(handle, |core, _| {
        let options = request_options(replayable, refresh, route);
        Ok(core.submit(time(now), options)?.0 as f64)
    })
}

/// `handle_response(now, id, status)`.
#[unsafe(no_mangle)]
pub extern "C" fn core_response(handle: u32, now: f64, id: f64, status: u32) -> f64 {
    core_input(handle, |core, _| {
        let status = http_status(status)?;
        core.handle_response(time(now), RequestId(id as u64), status)?;
        Ok(0.0)
    })
}

/// `handle_transport_error(now, id)`.
#[unsafe(no_mangle)]
pub extern "C" fn core_transport_error(handle: u32, now: f64, id: f64) -> f64 {
    core_input(handle, |core, _| {
        core.handle_transport_error(time(now), RequestId(id as u64))?;
        Ok(0.0)
    })
}

/// `cancel(now, id)`.
#[unsafe(no_mangle)]
pub extern "C" fn core_cancel(handle: u32, now: f64, id: f64) -> f64 {
    core_input(handle, |core, _| {
        core.cancel(time(now), RequestId(id as u64))?;
        Ok(0.0)
    })
}

/// `handle_refresh_succeeded(now, attempt, credentials)` (credentials as in
/// [`core_login`]).
#[unsafe(no_mangle)]
pub extern "C" fn core_refresh_succeeded(
    handle: u32,
    now: f64,
    attempt: f64,
    at_len: i32,
    rt_len: i32,
    expires_in_ms: f64,
) -> f64 {
    core_input(handle, |core, args| {
        let c = credentials(args, at_len, rt_len, expires_in_ms)?;
        core.handle_refresh_succeeded(time(now), AttemptId(attempt as u64), c)?;
        Ok(0.0)
    })
}

fn failure(rejected: u32, retry_after_ms: f64) -> RefreshFailure {
    if rejected != 0 {
        RefreshFailure::Rejected
    } else {
        RefreshFailure::Transient {
            retry_after_ms: optional(retry_after_ms),
        }
    }
}

/// `handle_refresh_failed(now, attempt, failure)`: `rejected` ≠ 0 for `Rejected`, else
/// `Transient { retry_after_ms }` (< 0 for none).
#[unsafe(no_mangle)]
pub extern "C" fn core_refresh_failed(
    handle: u32,
    now: f64,
    attempt: f64,
    rejected: u32,
    retry_after_ms: f64,
) -> f64 {
    core_input(handle, |core, _| {
        core.handle_refresh_failed(
            time(now),
            AttemptId(attempt as u64),
            failure(rejected, retry_after_ms),
        )?;
        Ok(0.0)
    })
}

/// The inputs that take only a time: 0 `handle_timeout`, 1 `force_refresh`, 2 `logout`,
/// 3 `begin_restore`, 4 `restore_failed`.
#[unsafe(no_mangle)]
pub extern "C" fn core_tick(handle: u32, which: u32, now: f64) -> f64 {
    core_input(handle, |core, _| {
        let now = time(now);
        match which {
            0 => core.handle_timeout(now)?,
            1 => core.force_refresh(now)?,
            2 => core.logout(now)?,
            3 => core.begin_restore(now)?,
            4 => core.restore_failed(now)?,
            _ => return Err(Error::argument(format!("unknown input {which}"))),
        }
        Ok(0.0)
    })
}

/// `poll_timeout()`: the next deadline, or [`NONE`].
#[unsafe(no_mangle)]
pub extern "C" fn core_poll_timeout(handle: u32) -> f64 {
    run(|s| {
        Ok(s.cores
            .get(handle)?
            .poll_timeout()
            .map_or(NONE, |t| t as f64))
    })
}

/// What JavaScript reads about a coordinator, as JSON in the out buffer: `stats`, `now`,
/// `logged_in`, `generation`, `refreshing`, `restoring`, `waiting`, `open`, `config`.
#[unsafe(no_mangle)]
pub extern "C" fn core_state(handle: u32) -> f64 {
    run(|s| {
        let State { out, cores, .. } = s;
        encode::state(cores.get(handle)?, out);
        Ok(0.0)
    })
}

/// Starts (capacity > 0) or stops the flight recorder.
#[unsafe(no_mangle)]
pub extern "C" fn core_record(handle: u32, capacity: u32) -> f64 {
    run(|s| {
        s.cores.get(handle)?.record(capacity as usize);
        Ok(0.0)
    })
}

/// 0: the flight recording as a transcript (JSON); 1: its explanation; 2: the causes of
/// the last input's commands (a JSON array of codes).
#[unsafe(no_mangle)]
pub extern "C" fn core_trace(handle: u32, what: u32) -> f64 {
    run(|s| {
        let State { out, cores, .. } = s;
        let core = cores.get(handle)?;
        let text = match what {
            0 => serde_json::to_string(&core.trace().transcript(core.config())).unwrap_or_default(),
            1 => core.trace().explain(core.config()),
            _ => {
                let causes: Vec<String> = core
                    .last_causes()
                    .into_iter()
                    .map(reauth::trace::Cause::code)
                    .collect();
                serde_json::to_string(&causes).unwrap_or_default()
            }
        };
        out.bytes(text.as_bytes());
        Ok(0.0)
    })
}

#[cfg(feature = "tools")]
/// Explains a transcript (JSON in the in buffer); the text goes out.
#[unsafe(no_mangle)]
pub extern "C" fn explain_transcript(len: i32) -> f64 {
    use reauth::trace::transcript::{ExplainError, Transcript, explain};
    run(|s| {
        let State { input, out, .. } = s;
        let transcript: Transcript =
            serde_json::from_str(Args::new(input).text(len, "the transcript")?)
                .map_err(|e| Error::new("invalid_transcript", e.to_string()))?;
        let text = explain(&transcript).map_err(|e| match e {
            ExplainError::Start(e) => Error::new("invalid_transcript", e.to_string()),
            ExplainError::DoesNotReplay(mismatches) => Error::new(
                "transcript_mismatch",
                format!(
                    "the transcript does not replay ({} of {} steps differ)",
                    mismatches.len(),
                    transcript.steps.len()
                ),
            ),
        })?;
        out.bytes(text.as_bytes());
        Ok(0.0)
    })
}

// ----- the driver -----------------------------------------------------------------------

/// A driver (the core and the routing of its commands, [`Driver`]) from a config in
/// JSON; returns its handle. The effective config goes out as JSON.
#[unsafe(no_mangle)]
pub extern "C" fn driver_new(config_len: i32) -> f64 {
    run(|s| {
        let config = config(Args::new(&s.input).text(config_len, "the config")?)?;
        let driver = Driver::new(config).map_err(|e| Error::new("config", e.to_string()))?;
        let effective =
            driver.with(|core| serde_json::to_string(core.config()).unwrap_or_default())?;
        s.out.bytes(effective.as_bytes());
        Ok(f64::from(s.drivers.insert(driver)))
    })
}

/// Frees a driver; an unknown handle is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn driver_free(handle: u32) {
    STATE.with(|state| state.borrow_mut().drivers.remove(handle));
}

/// Applies one input to a driver; returns its step packed as [`wire`] documents, as an
/// `f64` (request ids up to 2^44 fit exactly), with the step's bytes
/// ([`wire::encode_more`]) in the out buffer when the packed number says *more*.
fn driver_input(
    handle: u32,
    known: f64,
    input: impl FnOnce(&Driver, &mut Args<'_>) -> Result<(Option<RequestId>, reauth_host::Step)>,
) -> f64 {
    run(|s| {
        let State {
            input: bytes,
            out,
            drivers,
            ..
        } = s;
        let driver = drivers.get(handle)?;
        let (id, step) = input(driver, &mut Args::new(bytes))?;
        let known = Generation(known as u64);
        let packed = wire::pack(&step, id, known)
            .filter(|&p| p < (1 << 53))
            .ok_or_else(|| Error::argument("the request id no longer fits a JavaScript number"))?;
        if wire::needs_more(&step, known) {
            wire::encode_more(&step, known, out.vec());
        }
        Ok(packed as f64)
    })
}

/// `submit`: `known` is the generation of the token JavaScript holds (0 for none).
#[unsafe(no_mangle)]
pub extern "C" fn driver_submit(
    handle: u32,
    now: f64,
    replayable: u32,
    refresh: u32,
    route: u32,
    known: f64,
) -> f64 {
    driver_input(handle, known, |d, _| {
        let options = request_options(replayable, refresh, route);
        let (id, step) = d.submit(time(now), options)?;
        Ok((Some(id), step))
    })
}

/// `response`: the `WWW-Authenticate` values, `challenges` of them, in the in buffer as
/// `u32` length + UTF-8 each.
#[unsafe(no_mangle)]
pub extern "C" fn driver_response(
    handle: u32,
    now: f64,
    id: f64,
    status: u32,
    challenges: u32,
    known: f64,
) -> f64 {
    driver_input(handle, known, |d, args| {
        let status = http_status(status)?;
        let values = challenge_values(args, challenges)?;
        Ok((
            None,
            d.response(time(now), RequestId(id as u64), status, &values)?,
        ))
    })
}

/// `abandon`: the request ends without a response.
#[unsafe(no_mangle)]
pub extern "C" fn driver_abandon(handle: u32, now: f64, id: f64, known: f64) -> f64 {
    driver_input(handle, known, |d, _| {
        Ok((None, d.abandon(time(now), RequestId(id as u64))?))
    })
}

/// `refresh_succeeded` (credentials as in [`core_login`]).
#[unsafe(no_mangle)]
pub extern "C" fn driver_refresh_succeeded(
    handle: u32,
    now: f64,
    attempt: f64,
    at_len: i32,
    rt_len: i32,
    expires_in_ms: f64,
    known: f64,
) -> f64 {
    driver_input(handle, known, |d, args| {
        let c = credentials(args, at_len, rt_len, expires_in_ms)?;
        Ok((
            None,
            d.refresh_succeeded(time(now), AttemptId(attempt as u64), c)?,
        ))
    })
}

/// `refresh_failed` (failure as in [`core_refresh_failed`]).
#[unsafe(no_mangle)]
pub extern "C" fn driver_refresh_failed(
    handle: u32,
    now: f64,
    attempt: f64,
    rejected: u32,
    retry_after_ms: f64,
    known: f64,
) -> f64 {
    driver_input(handle, known, |d, _| {
        let f = failure(rejected, retry_after_ms);
        Ok((
            None,
            d.refresh_failed(time(now), AttemptId(attempt as u64), f)?,
        ))
    })
}

/// `login` (credentials as in [`core_login`]).
#[unsafe(no_mangle)]
pub extern "C" fn driver_login(
    handle: u32,
    now: f64,
    at_len: i32,
    rt_len: i32,
    expires_in_ms: f64,
    known: f64,
) -> f64 {
    driver_input(handle, known, |d, args| {
        let c = credentials(args, at_len, rt_len, expires_in_ms)?;
        Ok((None, d.login(time(now), c)?))
    })
}

/// The inputs that take only a time: 0 `timeout`, 1 `force_refresh`, 2 `logout`,
/// 3 `close`, 4 `begin_restore`, 5 `restore_failed`.
#[unsafe(no_mangle)]
pub extern "C" fn driver_tick(handle: u32, which: u32, now: f64, known: f64) -> f64 {
    driver_input(handle, known, |d, _| {
        let now = time(now);
        let step = match which {
            0 => d.timeout(now)?,
            1 => d.force_refresh(now)?,
            2 => d.logout(now)?,
            3 => d.close(now)?,
            4 => d.begin_restore(now)?,
            5 => d.restore_failed(now)?,
            _ => return Err(Error::argument(format!("unknown input {which}"))),
        };
        Ok((None, step))
    })
}

/// The driver's next deadline, or [`NONE`].
#[unsafe(no_mangle)]
pub extern "C" fn driver_deadline(handle: u32) -> f64 {
    run(|s| {
        Ok(s.drivers
            .get(handle)?
            .deadline()?
            .map_or(NONE, |t| t as f64))
    })
}

/// The driver's core as [`core_state`] writes it.
#[unsafe(no_mangle)]
pub extern "C" fn driver_state(handle: u32) -> f64 {
    run(|s| {
        let State { out, drivers, .. } = s;
        drivers.get(handle)?.with(|core| encode::state(core, out))?;
        Ok(0.0)
    })
}

/// Starts (capacity > 0) or stops the driver's flight recorder.
#[unsafe(no_mangle)]
pub extern "C" fn driver_record(handle: u32, capacity: u32) -> f64 {
    run(|s| {
        s.drivers.get(handle)?.record(capacity as usize)?;
        Ok(0.0)
    })
}

/// The driver's flight recording as a transcript (JSON).
#[unsafe(no_mangle)]
pub extern "C" fn driver_trace(handle: u32) -> f64 {
    run(|s| {
        let State { out, drivers, .. } = s;
        let driver = drivers.get(handle)?;
        let config = driver.with(|core| core.config().clone())?;
        let trace = driver.trace()?;
        out.bytes(
            serde_json::to_string(&trace.transcript(&config))
                .unwrap_or_default()
                .as_bytes(),
        );
        Ok(0.0)
    })
}

// ----- the host layer ---------------------------------------------------------------------

/// The refresh call (RFC 6749 §6): from the endpoint's URL, client id, client secret
/// (`-1`: none; `basic` ≠ 0 sends it in an `Authorization: Basic` header) and the refresh
/// token, in the in buffer in that order. Out: `u32` header count, each header as two
/// prefixed strings (name, value), then the prefixed body.
#[unsafe(no_mangle)]
pub extern "C" fn token_request(
    url_len: i32,
    client_id_len: i32,
    secret_len: i32,
    basic: u32,
    rt_len: i32,
) -> f64 {
    run(|s| {
        let State { input, out, .. } = s;
        let mut args = Args::new(input);
        let url = args.text(url_len, "the token endpoint's URL")?;
        let client_id = args.text(client_id_len, "the client id")?;
        let mut endpoint = TokenEndpoint::new(url, client_id);
        if secret_len >= 0 {
            endpoint = endpoint.with_client_secret(args.text(secret_len, "the client secret")?);
        }
        if basic != 0 {
            endpoint = endpoint.with_auth(ClientAuth::Basic);
        }
        let token = Secret::new(args.text(rt_len, "the refresh token")?);
        let request = endpoint.refresh_request(&token);
        out.u32(u32::try_from(request.headers.len()).unwrap_or(0));
        for (name, value) in &request.headers {
            out.text(name);
            out.text(value.expose());
        }
        out.text(request.body.expose());
        Ok(0.0)
    })
}

/// Reads the token endpoint's answer ([`reauth_host::read_token_response`]): the
/// `Retry-After` value (`-1`: none), the body's bytes (at most
/// [`reauth_host::MAX_TOKEN_RESPONSE_BYTES`] + 1 of them) and the refresh token sent, in
/// the in buffer in that order. Out: [`encode::answer`].
#[unsafe(no_mangle)]
pub extern "C" fn read_token_response(
    status: u32,
    retry_after_len: i32,
    body_len: i32,
    sent_len: i32,
    wall_now: f64,
) -> f64 {
    run(|s| {
        let State { input, out, .. } = s;
        let mut args = Args::new(input);
        let retry_after = if retry_after_len >= 0 {
            Some(args.text(retry_after_len, "the Retry-After value")?)
        } else {
            None
        };
        let body = args.bytes(body_len)?;
        let sent = Secret::new(args.text(sent_len, "the refresh token sent")?);
        let status = u16::try_from(status).unwrap_or(0);
        let answer =
            reauth_host::read_token_response(status, retry_after, body, &sent, wall(wall_now));
        encode::answer(&answer, out);
        Ok(0.0)
    })
}

/// The store recipe (§12.1–§12.3). `what`: 0 `plan_refresh(token, stored)`,
/// 1 `after_rejection(token, stored)`, 2 `keep_rotation(stored, token)`,
/// 3 `StoredCredentials::from_login(credentials)` (the credentials given as a stored
/// record whose `expires_at` is the lifetime in ms), 4 `to_credentials(stored)`. The
/// in buffer holds the token, then the stored access and refresh tokens (`-1`: none).
/// Out: [`encode::plan`] for 0 and 1, [`encode::stored`] for 2 and 3,
/// [`encode::credentials`] for 4.
#[unsafe(no_mangle)]
pub extern "C" fn store_recipe(
    what: u32,
    token_len: i32,
    at_len: i32,
    rt_len: i32,
    expires: f64,
    wall_now: f64,
) -> f64 {
    run(|s| {
        let State { input, out, .. } = s;
        let mut args = Args::new(input);
        let token = if token_len >= 0 {
            Some(Secret::new(args.text(token_len, "the refresh token")?))
        } else {
            None
        };
        let now = wall(wall_now);
        let need_token = || {
            token
                .clone()
                .ok_or_else(|| Error::argument("a refresh token is needed"))
        };
        match what {
            0..=2 => {
                let stored = stored(&mut args, at_len, rt_len, expires)?;
                match what {
                    0 => encode::plan(
                        Some(&reauth_host::plan_refresh(
                            &need_token()?,
                            stored.as_ref(),
                            now,
                        )),
                        out,
                    ),
                    1 => encode::plan(
                        reauth_host::after_rejection(&need_token()?, stored.as_ref(), now).as_ref(),
                        out,
                    ),
                    _ => encode::stored(
                        reauth_host::keep_rotation(stored.as_ref(), &need_token()?).as_ref(),
                        out,
                    ),
                }
            }
            3 => {
                let c = credentials(&mut args, at_len, rt_len, expires)?;
                encode::stored(Some(&StoredCredentials::from_login(&c, now)), out);
            }
            4 => {
                let stored = stored(&mut args, at_len, rt_len, expires)?
                    .ok_or_else(|| Error::argument("no stored credentials"))?;
                encode::credentials(&stored.to_credentials(now), out);
            }
            _ => return Err(Error::argument(format!("unknown recipe {what}"))),
        }
        Ok(0.0)
    })
}

/// The Bearer error of a refusal's `WWW-Authenticate` values (`count` of them, prefixed,
/// in the in buffer): 0 none, 1 `invalid_token`, 2 `insufficient_scope`,
/// 3 `invalid_request`, 4 another.
#[unsafe(no_mangle)]
pub extern "C" fn bearer_error(count: u32) -> f64 {
    run(|s| {
        let values = challenge_values(&mut Args::new(&s.input), count)?;
        Ok(match reauth_host::bearer_error(values) {
            None => 0.0,
            Some(BearerError::InvalidToken) => 1.0,
            Some(BearerError::InsufficientScope) => 2.0,
            Some(BearerError::InvalidRequest) => 3.0,
            Some(BearerError::Other) => 4.0,
        })
    })
}

/// A `Retry-After` value (in the in buffer) in milliseconds, or [`NONE`] when unusable.
#[unsafe(no_mangle)]
pub extern "C" fn retry_after_ms(len: i32, wall_now: f64) -> f64 {
    run(|s| {
        let value = Args::new(&s.input).text(len, "the Retry-After value")?;
        Ok(reauth_host::retry_after_ms(value, wall(wall_now)).map_or(NONE, |ms| ms as f64))
    })
}

/// The default route of a request (rule 20): method, scheme, host and path in the in
/// buffer, `port` < 0 for the scheme's own. `name` ≠ 0 writes the route's name out too.
/// Returns the key (never 0).
#[unsafe(no_mangle)]
pub extern "C" fn default_route(
    method_len: i32,
    scheme_len: i32,
    host_len: i32,
    port: i32,
    path_len: i32,
    name: u32,
) -> f64 {
    run(|s| {
        let State { input, out, .. } = s;
        let mut args = Args::new(input);
        let method = args.text(method_len, "the method")?;
        let scheme = args.text(scheme_len, "the scheme")?;
        let host = args.text(host_len, "the host")?;
        let path = args.text(path_len, "the path")?;
        let port = u16::try_from(port).ok();
        if name != 0 {
            out.bytes(reauth_host::route_name(method, scheme, host, port, path).as_bytes());
        }
        let key = reauth_host::default_route(method, scheme, host, port, path);
        Ok(f64::from(key.get()))
    })
}

/// The key of a route or scope name ([`RouteKey::from_name`]), in the in buffer.
#[unsafe(no_mangle)]
pub extern "C" fn route_key(len: i32) -> f64 {
    run(|s| {
        let name = Args::new(&s.input).text(len, "the route name")?;
        Ok(f64::from(RouteKey::from_name(name).get()))
    })
}

/// The limits JavaScript checks against: 0 the largest token-endpoint body read,
/// 1 `wire::MAX_PACKED_ID`, 2 the core's last timestamp.
#[unsafe(no_mangle)]
pub extern "C" fn reauth_limit(which: u32) -> f64 {
    match which {
        0 => reauth_host::MAX_TOKEN_RESPONSE_BYTES as f64,
        1 => wire::MAX_PACKED_ID as f64,
        _ => reauth::MAX_TIMESTAMP as f64,
    }
}

/// The codes the encodings use for fail and logout reasons, as names: `what` 0 the fail
/// reasons by [`wire::fail_code`], 1 the logout reasons by [`wire::logout_code`] (minus
/// one, as the step bytes write them plus one). Out: a JSON array.
#[unsafe(no_mangle)]
pub extern "C" fn reason_names(what: u32) -> f64 {
    run(|s| {
        let names: Vec<&str> = if what == 0 {
            let mut all = FailReason::ALL.to_vec();
            all.sort_by_key(|r| wire::fail_code(*r));
            all.into_iter().map(FailReason::as_str).collect()
        } else {
            let mut all = [
                LogoutReason::Requested,
                LogoutReason::RefreshRejected,
                LogoutReason::NoRefreshToken,
                LogoutReason::ExcessiveRefresh,
            ];
            all.sort_by_key(|r| wire::logout_code(*r));
            all.into_iter().map(LogoutReason::as_str).collect()
        };
        s.out
            .bytes(serde_json::to_string(&names).unwrap_or_default().as_bytes());
        Ok(0.0)
    })
}

#[doc(hidden)]
pub fn command_kind(command: &Command) -> u8 {
    match command {
        Command::Send { .. } => kind::SEND,
        Command::Replay { .. } => kind::REPLAY,
        Command::Refresh { .. } => kind::REFRESH,
        Command::StoreCredentials { .. } => kind::STORE,
        Command::Complete { .. } => kind::COMPLETE,
        Command::Fail { .. } => kind::FAIL,
        Command::Logout { .. } => kind::LOGOUT,
    }
}

#[cfg(test)]
mod tests;
