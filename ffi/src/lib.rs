//! The C ABI of reauth.
//!
//! `include/reauth.h` is generated from this file by cbindgen and is the C user's
//! manual: every comment here ends up there. Conventions, after rustls-ffi:
//!
//! - Every name starts with `reauth_` / `REAUTH_`.
//! - Handles are opaque. `reauth_coordinator_new*` creates one, `reauth_coordinator_free`
//!   destroys it (NULL is allowed and does nothing).
//! - Every fallible function returns a `reauth_status`; `REAUTH_STATUS_OK` is 0. The
//!   numbers are stable and never reused. Out-parameters are written only on success.
//! - A Rust panic never unwinds into C: it becomes `REAUTH_STATUS_PANIC` and poisons the
//!   handle, after which every call on it returns `REAUTH_STATUS_POISONED`.
//! - On any error status the coordinator's state is unchanged and no command is lost.

#![allow(non_camel_case_types)] // C names
#![allow(clippy::missing_safety_doc)] // the safety contract of every function is in its doc

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

use reauth::{
    AttemptId, Batch, Command, Config, Coordinator, Credentials, FailReason, InputError,
    LogoutReason, MAX_TOKEN_LEN, RefreshFailure, RefreshWindow, RequestId, RequestOptions,
    RouteKey, Secret, SharedCoordinator, SharedError,
};

/// The result of every fallible call. The numbers are stable and never reused.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum reauth_status {
    /// Success; out-parameters were written.
    REAUTH_STATUS_OK = 0,
    /// A required pointer argument was NULL.
    REAUTH_STATUS_NULL_ARGUMENT = 1,
    /// A string or token was not valid UTF-8.
    REAUTH_STATUS_INVALID_UTF8 = 2,
    /// A configuration value is out of its documented range.
    REAUTH_STATUS_INVALID_CONFIG = 3,
    /// The JSON configuration could not be parsed (syntax, unknown field, a key given
    /// twice in one object, wrong type).
    REAUTH_STATUS_INVALID_JSON = 4,
    /// The request id was never issued, already ended or was cancelled. After a cancel
    /// this is expected for a late response: ignore it.
    REAUTH_STATUS_UNKNOWN_REQUEST = 5,
    /// The request is waiting for a refresh; no response can be due for it.
    REAUTH_STATUS_NOT_IN_FLIGHT = 6,
    /// No `REAUTH_COMMAND_REFRESH` ever carried this attempt.
    REAUTH_STATUS_UNKNOWN_ATTEMPT = 7,
    /// A token is empty, longer than 64 KiB, or contains whitespace or control
    /// characters. For a refresh result, report the refresh as failed instead.
    REAUTH_STATUS_INVALID_CREDENTIALS = 8,
    /// The HTTP status is outside 100..=599.
    REAUTH_STATUS_INVALID_STATUS = 9,
    /// `reauth_commands_get` was called with an index `>= reauth_commands_len`.
    REAUTH_STATUS_INDEX_OUT_OF_RANGE = 10,
    /// An earlier call panicked: this handle refuses every call. Free it and create a new
    /// one (log in again).
    REAUTH_STATUS_POISONED = 11,
    /// A bug in reauth: the call panicked and was stopped at the boundary. The handle is
    /// now poisoned. Please report it.
    REAUTH_STATUS_PANIC = 12,
    /// `now` is past `REAUTH_MAX_TIMESTAMP` (2^53 - 1 ms): the clock returned an error
    /// value such as `(uint64_t)-1`, or is not in milliseconds.
    REAUTH_STATUS_INVALID_TIME = 13,
    /// An argument has a value the call does not accept: unknown bits in the `flags` of
    /// `reauth_submit`.
    REAUTH_STATUS_INVALID_ARGUMENT = 14,
}

// The conversions from the core's enums below list every variant, with no wildcard arm:
// those enums are exhaustive on purpose, so a new variant fails to compile here until it
// has its own status or constant, instead of being reported under another one's name.

impl From<InputError> for reauth_status {
    fn from(e: InputError) -> Self {
        match e {
            InputError::UnknownRequest(_) => reauth_status::REAUTH_STATUS_UNKNOWN_REQUEST,
            InputError::NotInFlight(_) => reauth_status::REAUTH_STATUS_NOT_IN_FLIGHT,
            InputError::UnknownAttempt(_) => reauth_status::REAUTH_STATUS_UNKNOWN_ATTEMPT,
            InputError::InvalidCredentials(_) => reauth_status::REAUTH_STATUS_INVALID_CREDENTIALS,
            InputError::InvalidStatus(_) => reauth_status::REAUTH_STATUS_INVALID_STATUS,
            InputError::InvalidTime(_) => reauth_status::REAUTH_STATUS_INVALID_TIME,
        }
    }
}

impl From<SharedError> for reauth_status {
    fn from(e: SharedError) -> Self {
        match e {
            SharedError::Input(e) => e.into(),
            SharedError::Poisoned => reauth_status::REAUTH_STATUS_POISONED,
        }
    }
}

/// A static, NUL-terminated English description of `status`. Never NULL; the pointer is
/// valid for the life of the program. Unknown values give "unknown status".
#[unsafe(no_mangle)]
pub extern "C" fn reauth_status_message(status: u32) -> *const c_char {
    let text: &'static CStr = match status {
        0 => c"ok",
        1 => c"a required pointer argument was NULL",
        2 => c"a string or token is not valid UTF-8",
        3 => c"a configuration value is out of range",
        4 => c"the JSON configuration could not be parsed",
        5 => c"unknown request id",
        6 => c"the request is not awaiting a response",
        7 => c"unknown refresh attempt",
        8 => c"invalid credentials: empty, too long, or whitespace/control characters in a token",
        9 => c"invalid HTTP status (must be 100..=599)",
        10 => c"command index out of range",
        11 => c"the coordinator is poisoned by an earlier panic",
        12 => c"internal error: a panic was stopped at the FFI boundary",
        13 => {
            c"invalid time: now is past REAUTH_MAX_TIMESTAMP (the clock returned an error value?)"
        }
        14 => c"invalid argument: a value the call does not accept (unknown flag bits?)",
        _ => c"unknown status",
    };
    text.as_ptr()
}

/// The library version, e.g. "0.1.0". Static, NUL-terminated, never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn reauth_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}

/// `reauth_submit` flags: none set — a replayable request that may refresh.
pub const REAUTH_SUBMIT_DEFAULT: u32 = 0;
/// `reauth_submit` flag: the body cannot be sent twice (a stream). On a 401 its caller
/// gets the 401 (COMPLETE) instead of a replay; a refresh still starts for the others.
pub const REAUTH_SUBMIT_NOT_REPLAYABLE: u32 = 1;
/// `reauth_submit` flag: the request's refusal must not touch the session (a public
/// endpoint, or one whose 401/403 means "not allowed"): its refresh status completes as
/// is, no refresh starts and the token is not marked bad.
pub const REAUTH_SUBMIT_NO_REFRESH: u32 = 2;

/// The most refresh statuses a `reauth_config` can hold.
pub const REAUTH_MAX_REFRESH_STATUSES: usize = 16;

/// The largest `now` any input accepts (2^53 - 1 ms); a larger one is
/// `REAUTH_STATUS_INVALID_TIME` and changes nothing.
pub const REAUTH_MAX_TIMESTAMP: u64 = 9_007_199_254_740_991;
const _: () = assert!(REAUTH_MAX_TIMESTAMP == reauth::MAX_TIMESTAMP);

/// Configuration. Fill it with `reauth_config_default`, change fields, pass it to
/// `reauth_coordinator_new`. Ranges are checked there (`REAUTH_STATUS_INVALID_CONFIG`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct reauth_config {
    /// Statuses that mean "the access token was refused" (default {401}); the first
    /// `refresh_statuses_len` entries are used. Each must be in 400..=599, no duplicates.
    pub refresh_statuses: [u16; REAUTH_MAX_REFRESH_STATUSES],
    /// How many entries of `refresh_statuses` are used (0..=16; 0: no response starts a
    /// refresh, tokens are still refreshed before they expire).
    pub refresh_statuses_len: usize,
    /// Refresh this long before the token expires (at most half its lifetime). Default 30000.
    pub expiry_skew_ms: u64,
    /// Replays per request after a 401. Default 1.
    pub max_replays_per_request: u32,
    /// At most this many refresh cycles start per `refresh_window_ms`. Default 5.
    pub refresh_window_max_refreshes: u32,
    /// The sliding window of the refresh budget. Default 30000.
    pub refresh_window_ms: u64,
    /// First backoff after a transient refresh failure. Default 500.
    pub initial_backoff_ms: u64,
    /// Cap on the backoff and on Retry-After. Default 30000.
    pub max_backoff_ms: u64,
    /// Transient retries per refresh cycle. Default 3.
    pub max_retries: u32,
    /// A refresh call unanswered after this long counts as a transient failure. Default 30000.
    pub refresh_timeout_ms: u64,
    /// At most this many requests wait for a refresh. Default 1024.
    pub max_pending: u32,
    /// A request waits at most this long for a refresh. Default 60000.
    pub max_wait_ms: u64,
    /// An expiry-driven refresh counts in the refresh window when the token it replaces
    /// arrived less than this long ago (rule 7). Default 500.
    pub min_token_age_ms: u64,
}

impl reauth_config {
    fn to_config(self) -> Option<Config> {
        let statuses = self.refresh_statuses.get(..self.refresh_statuses_len)?;
        Some(
            Config::default()
                .with_refresh_statuses(statuses.to_vec())
                .with_expiry_skew_ms(self.expiry_skew_ms)
                .with_max_replays_per_request(self.max_replays_per_request)
                .with_refresh_window(RefreshWindow::new(
                    self.refresh_window_max_refreshes,
                    self.refresh_window_ms,
                ))
                .with_initial_backoff_ms(self.initial_backoff_ms)
                .with_max_backoff_ms(self.max_backoff_ms)
                .with_max_retries(self.max_retries)
                .with_refresh_timeout_ms(self.refresh_timeout_ms)
                .with_max_pending(self.max_pending)
                .with_max_wait_ms(self.max_wait_ms)
                .with_min_token_age_ms(self.min_token_age_ms),
        )
    }
}

/// Writes the defaults of the behaviour contract into `*out`. Does nothing if `out` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_config_default(out: *mut reauth_config) {
    let _ = catch_unwind(|| {
        if out.is_null() {
            return;
        }
        let d = Config::default();
        let mut statuses = [0u16; REAUTH_MAX_REFRESH_STATUSES];
        statuses[..d.refresh_statuses.len()].copy_from_slice(&d.refresh_statuses);
        let config = reauth_config {
            refresh_statuses: statuses,
            refresh_statuses_len: d.refresh_statuses.len(),
            expiry_skew_ms: d.expiry_skew_ms,
            max_replays_per_request: d.max_replays_per_request,
            refresh_window_max_refreshes: d.refresh_window.max_refreshes,
            refresh_window_ms: d.refresh_window.window_ms,
            initial_backoff_ms: d.initial_backoff_ms,
            max_backoff_ms: d.max_backoff_ms,
            max_retries: d.max_retries,
            refresh_timeout_ms: d.refresh_timeout_ms,
            max_pending: d.max_pending,
            max_wait_ms: d.max_wait_ms,
            min_token_age_ms: d.min_token_age_ms,
        };
        // SAFETY: `out` is non-NULL and, by the caller's contract, points to writable
        // memory for one `reauth_config`.
        unsafe { out.write(config) };
    });
}

/// The coordinator: a thread-safe handle. Every function taking a `const
/// reauth_coordinator *` may be called from any thread, concurrently; each returns the
/// commands *its own* input produced. Only `reauth_coordinator_free` must not race with
/// other calls on the same handle.
pub struct reauth_coordinator {
    inner: SharedCoordinator,
    poisoned: AtomicBool,
}

/// One input's commands, in the order they must be carried out. Created by the caller
/// (`reauth_commands_new`), passed to every input, which empties it and fills it with its
/// own commands; released with `reauth_commands_free`. Token pointers obtained from it
/// stay valid until the list's next input or its free. One thread at a time may use a
/// list; keep one per thread.
pub struct reauth_commands {
    commands: Batch,
}

/// Credentials, as the token endpoint returned them (or as stored at login). Tokens are
/// byte strings: pointer and length, UTF-8, not NUL-terminated (a terminator is
/// allowed after `len` bytes but not required). The library copies them (its copies are
/// wiped when dropped, also when a call fails half-way); the caller's buffers are only
/// read during the call. Zero-initialise the struct (`reauth_credentials c = {0};` or
/// `memset`) before setting fields, so that fields added in later versions read as
/// "not set".
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct reauth_credentials {
    /// The access token. Must not be NULL.
    pub access_token: *const u8,
    /// Its length in bytes, at most 65 536 (`REAUTH_STATUS_INVALID_CREDENTIALS` otherwise,
    /// checked before anything is read).
    pub access_token_len: usize,
    /// The refresh token, or NULL for none. In a refresh result NULL means "keep the
    /// previous refresh token" (the server did not rotate it).
    pub refresh_token: *const u8,
    /// Its length in bytes, at most 65 536 (ignored when `refresh_token` is NULL).
    pub refresh_token_len: usize,
    /// Whether `expires_in_ms` is set: 0 no, any other value yes. (A byte, not a
    /// `bool`: any value a C program stores here is valid.)
    pub has_expires_in: u8,
    /// Lifetime of the access token in milliseconds from `now`.
    pub expires_in_ms: u64,
}

/// What a command asks the host to do.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum reauth_command_kind {
    /// Transmit request `request_id` for the first time with `token` (the access token).
    REAUTH_COMMAND_SEND = 1,
    /// Transmit request `request_id` again with `token` (the access token).
    REAUTH_COMMAND_REPLAY = 2,
    /// Call the token endpoint with `token` (the refresh token); report the result with
    /// `attempt`.
    REAUTH_COMMAND_REFRESH = 3,
    /// Persist the credentials: `token` (access), `refresh_token` (may be NULL),
    /// `expires_at` (if `has_expires_at`; see there how to persist it), `generation`.
    REAUTH_COMMAND_STORE_CREDENTIALS = 4,
    /// Hand the response received for `request_id` to its caller as is. Terminal.
    REAUTH_COMMAND_COMPLETE = 5,
    /// Fail request `request_id` with `fail_reason`. Terminal.
    REAUTH_COMMAND_FAIL = 6,
    /// Delete stored credentials and show the login (`logout_reason`).
    REAUTH_COMMAND_LOGOUT = 7,
}

/// Why a request failed (`REAUTH_COMMAND_FAIL`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum reauth_fail_reason {
    /// Not a `REAUTH_COMMAND_FAIL`.
    REAUTH_FAIL_NONE = 0,
    /// Submitted while logged out.
    REAUTH_FAIL_NOT_LOGGED_IN = 1,
    /// The session ended while the request waited or was in flight.
    REAUTH_FAIL_LOGGED_OUT = 2,
    /// The refresh grant was refused; a logout follows.
    REAUTH_FAIL_REFRESH_REJECTED = 3,
    /// The token endpoint could not be reached; still logged in, retry later.
    REAUTH_FAIL_REFRESH_UNAVAILABLE = 4,
    /// Too many refresh cycles in the window; a logout follows.
    REAUTH_FAIL_EXCESSIVE_REFRESH = 5,
    /// Refused although the session's token is good: still 401 after the replay budget,
    /// or the endpoint refuses a token that works elsewhere (rule 20). Hand the caller
    /// the response you got.
    REAUTH_FAIL_UNAUTHORIZED = 6,
    /// Too many requests waiting for a refresh.
    REAUTH_FAIL_QUEUE_FULL = 7,
    /// Waited longer than `max_wait_ms`.
    REAUTH_FAIL_WAIT_TIMEOUT = 8,
    /// The host reported a transport error (`reauth_handle_transport_error`).
    REAUTH_FAIL_TRANSPORT = 9,
}

/// Why the session ended (`REAUTH_COMMAND_LOGOUT`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum reauth_logout_reason {
    /// Not a `REAUTH_COMMAND_LOGOUT`.
    REAUTH_LOGOUT_NONE = 0,
    /// `reauth_logout` was called.
    REAUTH_LOGOUT_REQUESTED = 1,
    /// The refresh grant was refused.
    REAUTH_LOGOUT_REFRESH_REJECTED = 2,
    /// A refresh was needed and there is no refresh token.
    REAUTH_LOGOUT_NO_REFRESH_TOKEN = 3,
    /// Too many refresh cycles in the window.
    REAUTH_LOGOUT_EXCESSIVE_REFRESH = 4,
}

/// One command as plain data. Fields that do not apply to `kind` are 0 / NULL. Token
/// pointers point into the `reauth_commands` list they came from and are valid until
/// that list is passed to the next input or freed; they are not NUL-terminated — use the
/// lengths.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct reauth_command {
    /// What to do.
    pub kind: reauth_command_kind,
    /// SEND, REPLAY, COMPLETE, FAIL: the request.
    pub request_id: u64,
    /// SEND, REPLAY, STORE_CREDENTIALS: the generation of the access token.
    pub generation: u64,
    /// REFRESH: the attempt to report the result with.
    pub attempt: u64,
    /// FAIL: why.
    pub fail_reason: reauth_fail_reason,
    /// LOGOUT: why.
    pub logout_reason: reauth_logout_reason,
    /// SEND, REPLAY, STORE_CREDENTIALS: the access token. REFRESH: the refresh token.
    pub token: *const u8,
    /// Length of `token` in bytes.
    pub token_len: usize,
    /// STORE_CREDENTIALS: the refresh token now in use, or NULL if the session has none.
    pub refresh_token: *const u8,
    /// Length of `refresh_token` in bytes.
    pub refresh_token_len: usize,
    /// STORE_CREDENTIALS: whether `expires_in_ms` is set.
    pub has_expires_in: bool,
    /// STORE_CREDENTIALS: lifetime of the access token as the server stated it. Do not
    /// persist it: see `expires_at`.
    pub expires_in_ms: u64,
    /// STORE_CREDENTIALS: whether `expires_at` is set (it is iff `has_expires_in`).
    pub has_expires_at: bool,
    /// STORE_CREDENTIALS: when the access token expires, on the clock of `now`. To
    /// persist the expiry, store `wall_clock_now + (expires_at - now)` (`now` as passed
    /// with the input that produced this command); when loading, log in with
    /// `expires_in_ms = stored - wall_clock_now` (0 if that is negative).
    pub expires_at: u64,
}

/// Counters since the coordinator was created.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct reauth_stats {
    /// Requests submitted.
    pub submitted: u64,
    /// SEND commands.
    pub sent: u64,
    /// REPLAY commands.
    pub replayed: u64,
    /// COMPLETE commands.
    pub completed: u64,
    /// FAIL commands, all reasons.
    pub failed: u64,
    /// FAIL commands by `reauth_fail_reason` (index 0 unused).
    pub failed_by_reason: [u64; 10],
    /// Requests cancelled by the host.
    pub cancelled: u64,
    /// Refresh statuses (401s) reported.
    pub unauthorized_responses: u64,
    /// Refresh cycles started.
    pub refresh_cycles: u64,
    /// REFRESH commands (cycles plus retries).
    pub refresh_attempts: u64,
    /// Refresh results adopted.
    pub refresh_succeeded: u64,
    /// Refreshes rejected by the token endpoint.
    pub refresh_rejected: u64,
    /// Transient refresh failures, deadline expiries included.
    pub refresh_transient: u64,
    /// Refresh attempts abandoned at their deadline.
    pub refresh_timeouts: u64,
    /// Stale refresh results ignored.
    pub refresh_results_ignored: u64,
    /// LOGOUT commands.
    pub logouts: u64,
}

// ----- plumbing ------------------------------------------------------------------------

type Outcome = Result<(), reauth_status>;

/// Runs `body` inside the panic boundary. A panic poisons `handle` (if any).
fn boundary(handle: *const reauth_coordinator, body: impl FnOnce() -> Outcome) -> reauth_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => reauth_status::REAUTH_STATUS_OK,
        Ok(Err(status)) => status,
        Err(_) => {
            if !handle.is_null() {
                // SAFETY: a non-NULL handle came from `reauth_coordinator_new*` and is
                // live for the duration of the call (caller's contract).
                unsafe { &*handle }.poisoned.store(true, Ordering::SeqCst);
            }
            reauth_status::REAUTH_STATUS_PANIC
        }
    }
}

/// Borrows a live, unpoisoned handle.
unsafe fn handle<'a>(
    ptr: *const reauth_coordinator,
) -> Result<&'a reauth_coordinator, reauth_status> {
    if ptr.is_null() {
        return Err(reauth_status::REAUTH_STATUS_NULL_ARGUMENT);
    }
    // SAFETY: non-NULL, and by the caller's contract a live handle.
    let h = unsafe { &*ptr };
    if h.poisoned.load(Ordering::SeqCst) {
        return Err(reauth_status::REAUTH_STATUS_POISONED);
    }
    Ok(h)
}

fn non_null<T>(ptr: *mut T) -> Result<*mut T, reauth_status> {
    if ptr.is_null() {
        Err(reauth_status::REAUTH_STATUS_NULL_ARGUMENT)
    } else {
        Ok(ptr)
    }
}

/// Copies a token given as pointer + length.
/// A copy of the caller's token, in a `Secret` (wiped when dropped). The length is
/// checked before a byte is read, so an absurd length never makes the library read past
/// the caller's buffer.
unsafe fn token(ptr: *const u8, len: usize) -> Result<Secret, reauth_status> {
    if ptr.is_null() {
        return Err(reauth_status::REAUTH_STATUS_NULL_ARGUMENT);
    }
    if len > MAX_TOKEN_LEN {
        return Err(reauth_status::REAUTH_STATUS_INVALID_CREDENTIALS);
    }
    // SAFETY: non-NULL; `len` is at most 64 KiB and the caller guarantees `len` readable
    // bytes at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    std::str::from_utf8(bytes)
        .map(Secret::new)
        .map_err(|_| reauth_status::REAUTH_STATUS_INVALID_UTF8)
}

unsafe fn credentials(ptr: *const reauth_credentials) -> Result<Credentials, reauth_status> {
    if ptr.is_null() {
        return Err(reauth_status::REAUTH_STATUS_NULL_ARGUMENT);
    }
    // SAFETY: non-NULL, points to a `reauth_credentials` (caller's contract).
    let c = unsafe { &*ptr };
    // SAFETY: pointer/length pairs as documented on `reauth_credentials`. If the refresh
    // token is refused, `access` is dropped here — a `Secret`, so its copy is wiped.
    let access = unsafe { token(c.access_token, c.access_token_len) }?;
    let refresh = if c.refresh_token.is_null() {
        None
    } else {
        // SAFETY: as above.
        Some(unsafe { token(c.refresh_token, c.refresh_token_len) }?)
    };
    let mut credentials = Credentials::new(access);
    if let Some(r) = refresh {
        credentials = credentials.with_refresh_token(r);
    }
    if c.has_expires_in != 0 {
        credentials = credentials.with_expires_in_ms(c.expires_in_ms);
    }
    Ok(credentials)
}

/// The shape of every input function: check the handle and the list, then apply the input
/// under the lock with its commands going straight into the caller's list (emptied
/// first, so it holds exactly this input's batch; its capacity is reused, so a host that
/// keeps one list per thread allocates nothing per call).
unsafe fn input<T>(
    coordinator: *const reauth_coordinator,
    out: *mut reauth_commands,
    f: impl FnOnce(&mut Coordinator) -> Result<T, reauth_status>,
) -> Result<T, reauth_status> {
    let out = non_null(out)?;
    // SAFETY: non-NULL, a live list from `reauth_commands_new`, used by this thread only
    // for the duration of the call (caller's contract). Emptied before anything can fail,
    // so after an error it never holds an earlier input's commands.
    let list = unsafe { &mut (*out).commands };
    list.clear();
    // SAFETY: forwarded caller contract.
    let h = unsafe { handle(coordinator) }?;
    match h.inner.run_into(list, f) {
        Ok(result) => result,
        Err(e) => Err(e.into()),
    }
}

/// [`input`] inside the panic boundary, for inputs that return nothing but commands.
unsafe fn run(
    coordinator: *const reauth_coordinator,
    out: *mut reauth_commands,
    f: impl FnOnce(&mut Coordinator) -> Outcome,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    boundary(coordinator, || unsafe { input(coordinator, out, f) })
}

// ----- lifecycle -----------------------------------------------------------------------

/// Creates a logged-out coordinator from `*config`; writes it to `*out`.
///
/// Errors: `REAUTH_STATUS_NULL_ARGUMENT` (config or out NULL),
/// `REAUTH_STATUS_INVALID_CONFIG` (a value out of range, `refresh_statuses_len` > 16).
/// Free the handle with `reauth_coordinator_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_coordinator_new(
    config: *const reauth_config,
    out: *mut *mut reauth_coordinator,
) -> reauth_status {
    boundary(std::ptr::null(), || {
        if config.is_null() {
            return Err(reauth_status::REAUTH_STATUS_NULL_ARGUMENT);
        }
        let out = non_null(out)?;
        // SAFETY: non-NULL and points to a `reauth_config` (caller's contract).
        let config = unsafe { *config }
            .to_config()
            .ok_or(reauth_status::REAUTH_STATUS_INVALID_CONFIG)?;
        create(config, out)
    })
}

/// Creates a logged-out coordinator from a JSON object (NUL-terminated UTF-8) whose
/// fields are those of the Rust `Config` (`{"max_pending": 64, "refresh_window":
/// {"max_refreshes": 3}}`); omitted fields take their defaults. Writes it to `*out`.
///
/// Errors: `REAUTH_STATUS_NULL_ARGUMENT`, `REAUTH_STATUS_INVALID_UTF8`,
/// `REAUTH_STATUS_INVALID_JSON` (syntax, unknown field, wrong type; a key given twice in
/// one object, at any level, instead of the last one winning; a JSON array where an
/// object belongs, such as `[[403]]`),
/// `REAUTH_STATUS_INVALID_CONFIG` (a value out of range).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_coordinator_new_json(
    json: *const c_char,
    out: *mut *mut reauth_coordinator,
) -> reauth_status {
    boundary(std::ptr::null(), || {
        if json.is_null() {
            return Err(reauth_status::REAUTH_STATUS_NULL_ARGUMENT);
        }
        let out = non_null(out)?;
        // SAFETY: non-NULL and NUL-terminated (caller's contract).
        let text = unsafe { CStr::from_ptr(json) }
            .to_str()
            .map_err(|_| reauth_status::REAUTH_STATUS_INVALID_UTF8)?;
        let config =
            config_from_json(text).map_err(|_| reauth_status::REAUTH_STATUS_INVALID_JSON)?;
        create(config, out)
    })
}

/// A configuration from JSON text, or why the text is not one (every reason is
/// `REAUTH_STATUS_INVALID_JSON`; ranges are checked later, by `create`).
///
/// Only objects are accepted where the format has objects: serde would also read a
/// struct from an array by field position (`[[403]]` as `{"refresh_statuses": [403]}`),
/// which no one writes on purpose. A key given twice in one object, at any level, is
/// refused ("duplicate field `max_pending`"): `serde_json::Value` keeps the last one
/// silently, so the config is deserialized from the text itself, where the derived
/// deserializers of `Config` and `RefreshWindow` see every key.
fn config_from_json(text: &str) -> Result<Config, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let object = value
        .as_object()
        .ok_or("the configuration is not a JSON object")?;
    if object.get("refresh_window").is_some_and(|w| !w.is_object()) {
        return Err("refresh_window is not a JSON object".into());
    }
    serde_json::from_str(text).map_err(|e| e.to_string())
}

fn create(config: Config, out: *mut *mut reauth_coordinator) -> Outcome {
    let inner =
        SharedCoordinator::new(config).map_err(|_| reauth_status::REAUTH_STATUS_INVALID_CONFIG)?;
    let handle = Box::new(reauth_coordinator {
        inner,
        poisoned: AtomicBool::new(false),
    });
    // SAFETY: `out` is non-NULL and writable (checked by the caller).
    unsafe { out.write(Box::into_raw(handle)) };
    Ok(())
}

/// Destroys a coordinator and wipes the tokens it holds. NULL does nothing. The handle
/// must not be used afterwards, and no other call on it may be running. Command lists it
/// produced stay valid until they are freed (their tokens are wiped then).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_coordinator_free(coordinator: *mut reauth_coordinator) {
    if coordinator.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: non-NULL, from `Box::into_raw` in `create`, freed once (caller's contract).
        drop(unsafe { Box::from_raw(coordinator) });
    }));
}

// ----- inputs --------------------------------------------------------------------------

/// Starts a session, or replaces the credentials from outside (re-login, another process
/// rotated them). Waiting requests go out with the new token. Writes the commands to
/// `*out_commands`.
///
/// Errors: `REAUTH_STATUS_INVALID_UTF8`, `REAUTH_STATUS_INVALID_CREDENTIALS`.
///
/// Pointers: `credentials` must not be NULL and is only read during the call; the rest,
/// the command list and the errors common to every input: "Every input" at the top of
/// this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_login(
    coordinator: *const reauth_coordinator,
    now: u64,
    credentials: *const reauth_credentials,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        run(coordinator, out_commands, move |c| {
            let creds = self::credentials(credentials)?;
            Ok(c.login(now, creds)?)
        })
    }
}

/// A request wants to go out. Writes its id to `*out_id` and the commands to
/// `*out_commands` (a SEND for it, or nothing while it waits for a refresh or for stored
/// credentials, or a FAIL). `flags` is `REAUTH_SUBMIT_DEFAULT` or an OR of
/// `REAUTH_SUBMIT_NOT_REPLAYABLE` and `REAUTH_SUBMIT_NO_REFRESH`. `route` names the
/// endpoint or scope (any number of yours, e.g. a hash of the route template; 0: none):
/// an endpoint that refuses a token which works elsewhere is remembered for that token,
/// and its further refusals FAIL with `REAUTH_FAIL_UNAUTHORIZED` at once instead of
/// refreshing again — hand the caller the response you got (contract rule 20).
///
/// Errors: `REAUTH_STATUS_INVALID_ARGUMENT` (a bit in `flags` that is not one of those).
///
/// Pointers: `out_id` must not be NULL; the rest, the command list and the errors common
/// to every input: "Every input" at the top of this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_submit(
    coordinator: *const reauth_coordinator,
    now: u64,
    flags: u32,
    route: u32,
    out_id: *mut u64,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    boundary(coordinator, || {
        // SAFETY: forwarded caller contract.
        let id = unsafe {
            input(coordinator, out_commands, move |c| {
                non_null(out_id)?;
                if flags & !(REAUTH_SUBMIT_NOT_REPLAYABLE | REAUTH_SUBMIT_NO_REFRESH) != 0 {
                    return Err(reauth_status::REAUTH_STATUS_INVALID_ARGUMENT);
                }
                let mut options = RequestOptions::default()
                    .with_replayable(flags & REAUTH_SUBMIT_NOT_REPLAYABLE == 0)
                    .with_refresh(flags & REAUTH_SUBMIT_NO_REFRESH == 0);
                if let Some(route) = RouteKey::new(route) {
                    options = options.with_route(route);
                }
                Ok(c.submit(now, options)?)
            })
        }?;
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { out_id.write(id.0) };
        Ok(())
    })
}

/// The host received HTTP `status` for the last SEND/REPLAY of request `id`.
///
/// Errors: `REAUTH_STATUS_UNKNOWN_REQUEST`, `REAUTH_STATUS_NOT_IN_FLIGHT`,
/// `REAUTH_STATUS_INVALID_STATUS` (outside 100..=599).
///
/// Pointers, the command list and the errors common to every input: "Every input" at the
/// top of this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_handle_response(
    coordinator: *const reauth_coordinator,
    now: u64,
    id: u64,
    status: u32,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        run(coordinator, out_commands, move |c| {
            let status =
                u16::try_from(status).map_err(|_| reauth_status::REAUTH_STATUS_INVALID_STATUS)?;
            Ok(c.handle_response(now, RequestId(id), status)?)
        })
    }
}

/// The refresh call `attempt` returned `*credentials`. A result for an attempt that is
/// no longer current (the session ended, newer credentials were accepted) is ignored:
/// `REAUTH_STATUS_OK` with an empty list (counted in `refresh_results_ignored`).
///
/// Errors: `REAUTH_STATUS_UNKNOWN_ATTEMPT` (no REFRESH command ever carried it),
/// `REAUTH_STATUS_INVALID_CREDENTIALS`, `REAUTH_STATUS_INVALID_UTF8`.
///
/// Pointers: `credentials` must not be NULL and is only read during the call; the rest,
/// the command list and the errors common to every input: "Every input" at the top of
/// this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_handle_refresh_succeeded(
    coordinator: *const reauth_coordinator,
    now: u64,
    attempt: u64,
    credentials: *const reauth_credentials,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        run(coordinator, out_commands, move |c| {
            let creds = self::credentials(credentials)?;
            Ok(c.handle_refresh_succeeded(now, AttemptId(attempt), creds)?)
        })
    }
}

/// The token endpoint refused the grant for `attempt` (`invalid_grant`, or 400/401 with
/// an OAuth error): terminal for the session — unless an earlier attempt of the same
/// cycle was abandoned at its deadline: then the rejection is held for
/// `refresh_timeout_ms` (empty list) so that attempt's late success can still be adopted,
/// and the FAILs and LOGOUT come from `reauth_handle_timeout` if it does not. Acted on
/// only for the active attempt; for any other (finished, abandoned, of an ended session)
/// it is `REAUTH_STATUS_OK` with an empty list.
///
/// Errors: `REAUTH_STATUS_UNKNOWN_ATTEMPT` (no REFRESH command ever carried it).
///
/// Pointers, the command list and the errors common to every input: "Every input" at the
/// top of this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_handle_refresh_rejected(
    coordinator: *const reauth_coordinator,
    now: u64,
    attempt: u64,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        run(coordinator, out_commands, move |c| {
            Ok(c.handle_refresh_failed(now, AttemptId(attempt), RefreshFailure::Rejected)?)
        })
    }
}

/// The refresh call `attempt` failed transiently (network error, 5xx, 429, no answer).
/// `has_retry_after`/`retry_after_ms` carry the server's Retry-After, if any; the delay
/// is capped at `max_backoff_ms`. Acted on only for the active attempt; for any other it
/// is `REAUTH_STATUS_OK` with an empty list.
///
/// Errors: `REAUTH_STATUS_UNKNOWN_ATTEMPT` (no REFRESH command ever carried it).
///
/// Pointers, the command list and the errors common to every input: "Every input" at the
/// top of this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_handle_refresh_transient(
    coordinator: *const reauth_coordinator,
    now: u64,
    attempt: u64,
    has_retry_after: bool,
    retry_after_ms: u64,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        run(coordinator, out_commands, move |c| {
            let failure = RefreshFailure::Transient {
                retry_after_ms: has_retry_after.then_some(retry_after_ms),
            };
            Ok(c.handle_refresh_failed(now, AttemptId(attempt), failure)?)
        })
    }
}

/// Time passed: fires due deadlines. Call it when the time from `reauth_poll_timeout`
/// arrives; early or extra calls are harmless.
///
/// Pointers, the command list and the errors common to every input: "Every input" at the
/// top of this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_handle_timeout(
    coordinator: *const reauth_coordinator,
    now: u64,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        run(coordinator, out_commands, move |c| {
            Ok(c.handle_timeout(now)?)
        })
    }
}

/// The last SEND/REPLAY of request `id` failed without an HTTP status (connection reset,
/// DNS, TLS, the HTTP client's own timeout). The commands are one FAIL with
/// `REAUTH_FAIL_TRANSPORT`: hand the caller the error you got. Report every such failure
/// this way (or cancel the request); otherwise its record stays in the coordinator.
///
/// Errors: `REAUTH_STATUS_UNKNOWN_REQUEST`, `REAUTH_STATUS_NOT_IN_FLIGHT`.
///
/// Pointers, the command list and the errors common to every input: "Every input" at the
/// top of this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_handle_transport_error(
    coordinator: *const reauth_coordinator,
    now: u64,
    id: u64,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        run(coordinator, out_commands, move |c| {
            Ok(c.handle_transport_error(now, RequestId(id))?)
        })
    }
}

/// The caller no longer wants request `id`. A waiting request is dropped; an in-flight
/// one is forgotten (its late response gives `REAUTH_STATUS_UNKNOWN_REQUEST`).
///
/// Errors: `REAUTH_STATUS_UNKNOWN_REQUEST` (never issued, already ended or cancelled).
///
/// Pointers, the command list and the errors common to every input: "Every input" at the
/// top of this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_cancel(
    coordinator: *const reauth_coordinator,
    now: u64,
    id: u64,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        run(coordinator, out_commands, move |c| {
            Ok(c.cancel(now, RequestId(id))?)
        })
    }
}

/// The host knows the token is bad: the next request waits for a refresh.
///
/// Pointers, the command list and the errors common to every input: "Every input" at the
/// top of this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_force_refresh(
    coordinator: *const reauth_coordinator,
    now: u64,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        run(
            coordinator,
            out_commands,
            move |c| Ok(c.force_refresh(now)?),
        )
    }
}

/// The user logs out: waiting requests fail, then a LOGOUT command.
///
/// Pointers, the command list and the errors common to every input: "Every input" at the
/// top of this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_logout(
    coordinator: *const reauth_coordinator,
    now: u64,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    unsafe { run(coordinator, out_commands, move |c| Ok(c.logout(now)?)) }
}

/// The app starts reading stored credentials (an asynchronous keychain read at start-up):
/// until `reauth_login` or `reauth_restore_failed`, submitted requests wait for them
/// (bounded by `max_pending` and `max_wait_ms`) instead of failing
/// `REAUTH_FAIL_NOT_LOGGED_IN`. Does nothing while logged in or already restoring. The
/// commands are always empty.
///
/// Pointers, the command list and the errors common to every input: "Every input" at the
/// top of this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_begin_restore(
    coordinator: *const reauth_coordinator,
    now: u64,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        run(
            coordinator,
            out_commands,
            move |c| Ok(c.begin_restore(now)?),
        )
    }
}

/// Nothing was stored, or it could not be read: the requests that waited for it get
/// FAIL `REAUTH_FAIL_NOT_LOGGED_IN`, in order, and the coordinator is logged out (no
/// LOGOUT command: there was no session). Does nothing unless restoring.
///
/// Pointers, the command list and the errors common to every input: "Every input" at the
/// top of this header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_restore_failed(
    coordinator: *const reauth_coordinator,
    now: u64,
    out_commands: *mut reauth_commands,
) -> reauth_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        run(coordinator, out_commands, move |c| {
            Ok(c.restore_failed(now)?)
        })
    }
}

/// Writes whether a timer is wanted to `*out_has` and, if so, when (same clock as `now`)
/// to `*out_at`. Arm one timer after every input; call `reauth_handle_timeout` then.
///
/// Pointers: `coordinator`, `out_has` and `out_at` must not be NULL; both outputs are
/// written only on success.
///
/// Errors: `REAUTH_STATUS_NULL_ARGUMENT`, `REAUTH_STATUS_POISONED`, `REAUTH_STATUS_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_poll_timeout(
    coordinator: *const reauth_coordinator,
    out_has: *mut bool,
    out_at: *mut u64,
) -> reauth_status {
    boundary(coordinator, || {
        // SAFETY: forwarded caller contract.
        let h = unsafe { handle(coordinator) }?;
        let (out_has, out_at) = (non_null(out_has)?, non_null(out_at)?);
        let at = h.inner.poll_timeout()?;
        // SAFETY: both non-NULL and writable (caller's contract).
        unsafe {
            out_has.write(at.is_some());
            out_at.write(at.unwrap_or(0));
        }
        Ok(())
    })
}

/// Copies the counters to `*out`.
///
/// Pointers: `coordinator` and `out` must not be NULL; `*out` is written only on success.
///
/// Errors: `REAUTH_STATUS_NULL_ARGUMENT`, `REAUTH_STATUS_POISONED`, `REAUTH_STATUS_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_get_stats(
    coordinator: *const reauth_coordinator,
    out: *mut reauth_stats,
) -> reauth_status {
    boundary(coordinator, || {
        // SAFETY: forwarded caller contract.
        let h = unsafe { handle(coordinator) }?;
        let out = non_null(out)?;
        let s = h.inner.stats()?;
        let mut by_reason = [0u64; 10];
        for reason in FailReason::ALL {
            by_reason[fail_reason(reason) as usize] = s.failed.get(reason);
        }
        let stats = reauth_stats {
            submitted: s.submitted,
            sent: s.sent,
            replayed: s.replayed,
            completed: s.completed,
            failed: s.failed.total(),
            failed_by_reason: by_reason,
            cancelled: s.cancelled,
            unauthorized_responses: s.unauthorized_responses,
            refresh_cycles: s.refresh_cycles,
            refresh_attempts: s.refresh_attempts,
            refresh_succeeded: s.refresh_succeeded,
            refresh_rejected: s.refresh_rejected,
            refresh_transient: s.refresh_transient,
            refresh_timeouts: s.refresh_timeouts,
            refresh_results_ignored: s.refresh_results_ignored,
            logouts: s.logouts,
        };
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { out.write(stats) };
        Ok(())
    })
}

// ----- commands ------------------------------------------------------------------------

/// The number of commands in `commands` (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_commands_len(commands: *const reauth_commands) -> usize {
    if commands.is_null() {
        return 0;
    }
    // SAFETY: non-NULL, a live list from this library (caller's contract).
    unsafe { &*commands }.commands.len()
}

/// Writes command `index` of `commands` to `*out`. Its token pointers are valid until the
/// list's next input or `reauth_commands_free(commands)`. A list does not refer to a
/// coordinator: it may be read and freed after `reauth_coordinator_free`.
///
/// Errors: `REAUTH_STATUS_NULL_ARGUMENT`, `REAUTH_STATUS_INDEX_OUT_OF_RANGE`,
/// `REAUTH_STATUS_PANIC` (a bug; the list is not touched).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_commands_get(
    commands: *const reauth_commands,
    index: usize,
    out: *mut reauth_command,
) -> reauth_status {
    boundary(std::ptr::null(), || {
        if commands.is_null() {
            return Err(reauth_status::REAUTH_STATUS_NULL_ARGUMENT);
        }
        let out = non_null(out)?;
        // SAFETY: non-NULL, a live list from this library (caller's contract).
        let list = unsafe { &*commands };
        let command = list
            .commands
            .get(index)
            .ok_or(reauth_status::REAUTH_STATUS_INDEX_OUT_OF_RANGE)?;
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { out.write(to_c(command)) };
        Ok(())
    })
}

/// A new, empty command list, or NULL if memory ran out. Pass it to every input: each
/// input empties it and writes its own commands into it, reusing its memory, so one list
/// per thread means no allocation per call. A list may be used with several
/// coordinators, but by one thread at a time. Free it with `reauth_commands_free`.
#[unsafe(no_mangle)]
pub extern "C" fn reauth_commands_new() -> *mut reauth_commands {
    catch_unwind(|| {
        Box::into_raw(Box::new(reauth_commands {
            commands: Batch::with_capacity(4),
        }))
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Frees a command list (NULL does nothing). Token pointers from it become invalid, and
/// the tokens it held are wiped once nothing else holds them. A list may be freed before
/// or after a coordinator it was used with. Freeing a list twice, or using it after
/// freeing it, is undefined behaviour (as with `free`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_commands_free(commands: *mut reauth_commands) {
    if commands.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: non-NULL, from `Box::into_raw` in `reauth_commands_new`, freed once
        // (caller's contract).
        drop(unsafe { Box::from_raw(commands) });
    }));
}

fn fail_reason(r: FailReason) -> reauth_fail_reason {
    match r {
        FailReason::NotLoggedIn => reauth_fail_reason::REAUTH_FAIL_NOT_LOGGED_IN,
        FailReason::LoggedOut => reauth_fail_reason::REAUTH_FAIL_LOGGED_OUT,
        FailReason::RefreshRejected => reauth_fail_reason::REAUTH_FAIL_REFRESH_REJECTED,
        FailReason::RefreshUnavailable => reauth_fail_reason::REAUTH_FAIL_REFRESH_UNAVAILABLE,
        FailReason::ExcessiveRefresh => reauth_fail_reason::REAUTH_FAIL_EXCESSIVE_REFRESH,
        FailReason::Unauthorized => reauth_fail_reason::REAUTH_FAIL_UNAUTHORIZED,
        FailReason::QueueFull => reauth_fail_reason::REAUTH_FAIL_QUEUE_FULL,
        FailReason::WaitTimeout => reauth_fail_reason::REAUTH_FAIL_WAIT_TIMEOUT,
        FailReason::Transport => reauth_fail_reason::REAUTH_FAIL_TRANSPORT,
    }
}

fn logout_reason(r: LogoutReason) -> reauth_logout_reason {
    match r {
        LogoutReason::Requested => reauth_logout_reason::REAUTH_LOGOUT_REQUESTED,
        LogoutReason::RefreshRejected => reauth_logout_reason::REAUTH_LOGOUT_REFRESH_REJECTED,
        LogoutReason::NoRefreshToken => reauth_logout_reason::REAUTH_LOGOUT_NO_REFRESH_TOKEN,
        LogoutReason::ExcessiveRefresh => reauth_logout_reason::REAUTH_LOGOUT_EXCESSIVE_REFRESH,
    }
}

fn to_c(command: &Command) -> reauth_command {
    let mut c = reauth_command {
        kind: reauth_command_kind::REAUTH_COMMAND_COMPLETE,
        request_id: 0,
        generation: 0,
        attempt: 0,
        fail_reason: reauth_fail_reason::REAUTH_FAIL_NONE,
        logout_reason: reauth_logout_reason::REAUTH_LOGOUT_NONE,
        token: std::ptr::null(),
        token_len: 0,
        refresh_token: std::ptr::null(),
        refresh_token_len: 0,
        has_expires_in: false,
        expires_in_ms: 0,
        has_expires_at: false,
        expires_at: 0,
    };
    let bytes = |s: &reauth::Secret| (s.expose().as_ptr(), s.len());
    match command {
        Command::Send {
            id,
            access_token,
            generation,
        }
        | Command::Replay {
            id,
            access_token,
            generation,
        } => {
            c.kind = if matches!(command, Command::Send { .. }) {
                reauth_command_kind::REAUTH_COMMAND_SEND
            } else {
                reauth_command_kind::REAUTH_COMMAND_REPLAY
            };
            c.request_id = id.0;
            c.generation = generation.0;
            (c.token, c.token_len) = bytes(access_token);
        }
        Command::Refresh {
            attempt,
            refresh_token,
        } => {
            c.kind = reauth_command_kind::REAUTH_COMMAND_REFRESH;
            c.attempt = attempt.0;
            (c.token, c.token_len) = bytes(refresh_token);
        }
        Command::StoreCredentials {
            credentials,
            generation,
            expires_at,
        } => {
            c.kind = reauth_command_kind::REAUTH_COMMAND_STORE_CREDENTIALS;
            c.generation = generation.0;
            (c.token, c.token_len) = bytes(&credentials.access_token);
            if let Some(r) = &credentials.refresh_token {
                (c.refresh_token, c.refresh_token_len) = bytes(r);
            }
            c.has_expires_in = credentials.expires_in_ms.is_some();
            c.expires_in_ms = credentials.expires_in_ms.unwrap_or(0);
            c.has_expires_at = expires_at.is_some();
            c.expires_at = expires_at.unwrap_or(0);
        }
        Command::Complete { id } => c.request_id = id.0,
        Command::Fail { id, reason } => {
            c.kind = reauth_command_kind::REAUTH_COMMAND_FAIL;
            c.request_id = id.0;
            c.fail_reason = fail_reason(*reason);
        }
        Command::Logout { reason } => {
            c.kind = reauth_command_kind::REAUTH_COMMAND_LOGOUT;
            c.logout_reason = logout_reason(*reason);
        }
    }
    c
}

/// Test hook (feature `testing`, not in the header): panics inside the panic boundary.
#[cfg(feature = "testing")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_testing_panic(
    coordinator: *const reauth_coordinator,
) -> reauth_status {
    boundary(coordinator, || {
        // SAFETY: forwarded caller contract.
        let _h = unsafe { handle(coordinator) }?;
        panic!("reauth_testing_panic: a deliberate panic to test the boundary");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `reauth_coordinator_new_json` on `json`: the status, and the handle freed.
    fn new_json(json: &std::ffi::CStr) -> reauth_status {
        let mut co: *mut reauth_coordinator = std::ptr::null_mut();
        // SAFETY: a NUL-terminated string and a writable out-pointer; the handle, if
        // created, is freed once.
        unsafe {
            let status = reauth_coordinator_new_json(json.as_ptr(), &mut co);
            reauth_coordinator_free(co);
            status
        }
    }

    #[test]
    fn json_config_refuses_duplicate_keys_at_every_level() {
        use reauth_status::{REAUTH_STATUS_INVALID_JSON, REAUTH_STATUS_OK};
        // Without the check the last key wins: each of these would be accepted, or
        // refused as INVALID_CONFIG for the last value only.
        for json in [
            cr#"{"max_pending": 0, "max_pending": 8}"#,
            cr#"{"max_pending": 8, "max_pending": 0}"#,
            cr#"{"max_pending": 8, "max_wait_ms": 1000, "max_pending": 8}"#,
            cr#"{"refresh_window": {"max_refreshes": 3, "max_refreshes": 4}}"#,
            cr#"{"refresh_window": {}, "refresh_window": {"max_refreshes": 3}}"#,
            // The same key spelled with an escape is the same key.
            cr#"{"max_pending": 8, "max\u005fpending": 9}"#,
        ] {
            assert_eq!(new_json(json), REAUTH_STATUS_INVALID_JSON, "{json:?}");
        }
        assert_eq!(
            new_json(cr#"{"max_pending": 8, "refresh_window": {"max_refreshes": 3}}"#),
            REAUTH_STATUS_OK
        );
    }

    #[test]
    fn a_duplicate_key_is_named_in_the_message() {
        for (json, key) in [
            (r#"{"max_pending": 8, "max_pending": 9}"#, "max_pending"),
            (
                r#"{"refresh_window": {"window_ms": 1, "window_ms": 2}}"#,
                "window_ms",
            ),
            (
                r#"{"refresh_window": {}, "refresh_window": {}}"#,
                "refresh_window",
            ),
            (
                r#"{"refresh_statuses": [401], "refresh_statuses": [401, 403]}"#,
                "refresh_statuses",
            ),
        ] {
            let message = config_from_json(json).expect_err(json);
            assert!(
                message.contains(&format!("duplicate field `{key}`")),
                "{json}: {message}"
            );
        }
    }
}
