//! A [`Step`] as one integer — and, only when it asks more than its own request's
//! command, a few bytes — so that a binding crosses into native code once per event
//! (issue 20). The encoding every binding decodes (Python's `reauth._driver`, Kotlin's
//! adapter); [`decode`] is the reference decoder the tests hold the others to.
//!
//! **The integer** ([`pack`]), a non-negative `i64`:
//!
//! | bits | meaning |
//! | --- | --- |
//! | 0–2 | own kind: 0 wait, 1 send, 2 complete, 3 fail, 4 the caller's answer |
//! | 3–6 | the fail reason's code ([`fail_code`]), for kind 3 |
//! | 7 | *more*: fetch the bytes below (the binding's `take_more`) before acting |
//! | 8 | the deadline moved: the timer reads it again |
//! | 9–62 | the request id, for `submit` (else 0) |
//!
//! An own `Send` carries no token in the integer: the binding passes the generation of
//! the token it holds (`known`); the token text comes in the bytes only when the `Send`
//! is for another generation. So in the steady state — one token, no refresh — an event
//! is one call that returns one integer.
//!
//! **The bytes** ([`encode_more`]), little-endian:
//!
//! ```text
//! header   u64 own generation (0 unless own is a send), u16 tokens, u16 refreshes,
//!          u32 wakes, u8 logout (0 none, else 1 + logout code)       17 bytes
//! tokens   per entry: u64 generation, u32 length, UTF-8 text
//! refresh  per entry: u64 attempt, u32 length, UTF-8 refresh token
//! wakes    per entry: u64 request id, u8 kind (1 send, 2 complete, 3 fail, 5 closed),
//!          u8 fail code, u64 generation (sends)                      18 bytes each
//! ```
//!
//! Every generation a send in the step uses appears once in the token table, the own
//! send's too when it is not `known`.

use reauth::{FailReason, Generation, LogoutReason, RequestId};

use crate::driver::{Own, Step, Wake};

/// Own kind: wait for a wake (or nothing to do).
pub const OWN_WAIT: u8 = 0;
/// Own kind: send with the token of the own generation.
pub const OWN_SEND: u8 = 1;
/// Own kind: hand the caller its response.
pub const OWN_COMPLETE: u8 = 2;
/// Own kind: fail the caller's request (reason in bits 3–6).
pub const OWN_FAIL: u8 = 3;
/// Own kind: the response is the caller's answer (§12.4).
pub const OWN_CALLERS_ANSWER: u8 = 4;

/// Wake kind: send with a token of the table.
pub const WAKE_SEND: u8 = 1;
/// Wake kind: hand the caller its response.
pub const WAKE_COMPLETE: u8 = 2;
/// Wake kind: fail the caller's request.
pub const WAKE_FAIL: u8 = 3;
/// Wake kind: the driver was closed.
pub const WAKE_CLOSED: u8 = 5;

/// The largest request id an integer carries (2^54 − 1: at a million requests a second,
/// 570 years of one process).
pub const MAX_PACKED_ID: u64 = (1 << 54) - 1;

/// The stable code of a fail reason, in the contract's order (§6).
pub fn fail_code(reason: FailReason) -> u8 {
    match reason {
        FailReason::NotLoggedIn => 0,
        FailReason::LoggedOut => 1,
        FailReason::RefreshRejected => 2,
        FailReason::RefreshUnavailable => 3,
        FailReason::ExcessiveRefresh => 4,
        FailReason::Unauthorized => 5,
        FailReason::QueueFull => 6,
        FailReason::WaitTimeout => 7,
        FailReason::Transport => 8,
    }
}

/// The fail reason of a [`fail_code`]; `None` for any other number.
pub fn fail_reason(code: u8) -> Option<FailReason> {
    Some(match code {
        0 => FailReason::NotLoggedIn,
        1 => FailReason::LoggedOut,
        2 => FailReason::RefreshRejected,
        3 => FailReason::RefreshUnavailable,
        4 => FailReason::ExcessiveRefresh,
        5 => FailReason::Unauthorized,
        6 => FailReason::QueueFull,
        7 => FailReason::WaitTimeout,
        8 => FailReason::Transport,
        _ => return None,
    })
}

/// The stable code of a logout reason, in the contract's order (§6).
pub fn logout_code(reason: LogoutReason) -> u8 {
    match reason {
        LogoutReason::Requested => 0,
        LogoutReason::RefreshRejected => 1,
        LogoutReason::NoRefreshToken => 2,
        LogoutReason::ExcessiveRefresh => 3,
    }
}

/// The logout reason of a [`logout_code`]; `None` for any other number.
pub fn logout_reason(code: u8) -> Option<LogoutReason> {
    Some(match code {
        0 => LogoutReason::Requested,
        1 => LogoutReason::RefreshRejected,
        2 => LogoutReason::NoRefreshToken,
        3 => LogoutReason::ExcessiveRefresh,
        _ => return None,
    })
}

fn own_bits(own: &Own) -> i64 {
    let (kind, reason) = match own {
        Own::Wait => (OWN_WAIT, 0),
        Own::Send { .. } => (OWN_SEND, 0),
        Own::Complete => (OWN_COMPLETE, 0),
        Own::Fail(reason) => (OWN_FAIL, fail_code(*reason)),
        Own::CallersAnswer => (OWN_CALLERS_ANSWER, 0),
    };
    i64::from(kind) | i64::from(reason) << 3
}

/// Whether the step needs its bytes for a binding that holds the token of `known`.
pub fn needs_more(step: &Step, known: Generation) -> bool {
    !step.wakes.is_empty()
        || !step.refreshes.is_empty()
        || step.logout.is_some()
        || matches!(&step.own, Own::Send { generation, .. } if *generation != known)
}

/// The integer of `step` for request `id` (`None` for inputs about no new request), for
/// a binding that holds the token of `known`. `None` when `id` exceeds
/// [`MAX_PACKED_ID`].
pub fn pack(step: &Step, id: Option<RequestId>, known: Generation) -> Option<i64> {
    let id = id.map_or(0, |id| id.0);
    if id > MAX_PACKED_ID {
        return None;
    }
    let more = i64::from(needs_more(step, known));
    let deadline = i64::from(step.deadline_changed);
    // id ≤ 2^54 − 1, so the shift stays below 2^63.
    let id = i64::try_from(id).ok()?;
    Some(own_bits(&step.own) | more << 7 | deadline << 8 | id << 9)
}

fn put_text(out: &mut Vec<u8>, number: u64, text: &str) {
    out.extend_from_slice(&number.to_le_bytes());
    // Tokens are at most a few KiB (the core refuses longer ones); the length fits.
    out.extend_from_slice(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Appends the bytes of `step` (module docs) to `out`, for a binding that holds the token
/// of `known`.
pub fn encode_more(step: &Step, known: Generation, out: &mut Vec<u8>) {
    let mut tokens: Vec<(Generation, &str)> = Vec::new();
    let own_generation = match &step.own {
        Own::Send {
            access_token,
            generation,
        } => {
            if *generation != known {
                tokens.push((*generation, access_token.expose()));
            }
            generation.0
        }
        _ => 0,
    };
    for (_, wake) in &step.wakes {
        if let Wake::Send {
            access_token,
            generation,
        } = wake
            && !tokens.iter().any(|(g, _)| g == generation)
        {
            tokens.push((*generation, access_token.expose()));
        }
    }
    let count16 = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes();
    out.extend_from_slice(&own_generation.to_le_bytes());
    out.extend_from_slice(&count16(tokens.len()));
    out.extend_from_slice(&count16(step.refreshes.len()));
    out.extend_from_slice(
        &u32::try_from(step.wakes.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.push(step.logout.map_or(0, |r| 1 + logout_code(r)));
    for (generation, token) in &tokens {
        put_text(out, generation.0, token);
    }
    for (attempt, token) in &step.refreshes {
        put_text(out, attempt.0, token.expose());
    }
    for (id, wake) in &step.wakes {
        let (kind, code, generation) = match wake {
            Wake::Send { generation, .. } => (WAKE_SEND, 0, generation.0),
            Wake::Complete => (WAKE_COMPLETE, 0, 0),
            Wake::Fail(reason) => (WAKE_FAIL, fail_code(*reason), 0),
            Wake::Closed => (WAKE_CLOSED, 0, 0),
        };
        out.extend_from_slice(&id.0.to_le_bytes());
        out.push(kind);
        out.push(code);
        out.extend_from_slice(&generation.to_le_bytes());
    }
}

/// A step read back from its integer and bytes — the reference decoder (module docs).
/// `Debug` shows the token tables' generations and attempts, never their text.
#[derive(Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Own kind (`OWN_*`).
    pub own: u8,
    /// The fail reason, for [`OWN_FAIL`].
    pub own_reason: Option<FailReason>,
    /// The request id carried (0 if none).
    pub id: u64,
    /// Whether the deadline moved.
    pub deadline_changed: bool,
    /// The own send's generation (0 unless the bytes were read and own is a send).
    pub own_generation: u64,
    /// The token table.
    pub tokens: Vec<(u64, String)>,
    /// Refreshes: attempt and refresh token.
    pub refreshes: Vec<(u64, String)>,
    /// Wakes: id, kind (`WAKE_*`), reason, generation.
    pub wakes: Vec<(u64, u8, Option<FailReason>, u64)>,
    /// The logout, if any.
    pub logout: Option<LogoutReason>,
}

impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let numbers = |t: &[(u64, String)]| t.iter().map(|(n, _)| *n).collect::<Vec<_>>();
        f.debug_struct("Decoded")
            .field("own", &self.own)
            .field("own_reason", &self.own_reason)
            .field("id", &self.id)
            .field("deadline_changed", &self.deadline_changed)
            .field("own_generation", &self.own_generation)
            .field("tokens (generations)", &numbers(&self.tokens))
            .field("refreshes (attempts)", &numbers(&self.refreshes))
            .field("wakes", &self.wakes)
            .field("logout", &self.logout)
            .finish()
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2)?.try_into().ok().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }
    fn text(&mut self) -> Option<(u64, String)> {
        let number = self.u64()?;
        let len = usize::try_from(self.u32()?).ok()?;
        let text = std::str::from_utf8(self.take(len)?).ok()?.to_owned();
        Some((number, text))
    }
}

/// Reads a step back from its integer and (when bit 7 says so) its bytes. `None` for
/// malformed input.
pub fn decode(packed: i64, more: Option<&[u8]>) -> Option<Decoded> {
    let bits = u64::try_from(packed).ok()?;
    let own = u8::try_from(bits & 7).ok()?;
    let code = u8::try_from(bits >> 3 & 15).ok()?;
    let mut decoded = Decoded {
        own,
        own_reason: if own == OWN_FAIL {
            Some(fail_reason(code)?)
        } else {
            None
        },
        id: bits >> 9,
        deadline_changed: bits >> 8 & 1 == 1,
        own_generation: 0,
        tokens: Vec::new(),
        refreshes: Vec::new(),
        wakes: Vec::new(),
        logout: None,
    };
    if bits >> 7 & 1 == 0 {
        return Some(decoded);
    }
    let mut r = Reader(more?);
    decoded.own_generation = r.u64()?;
    let (tokens, refreshes, wakes) = (r.u16()?, r.u16()?, r.u32()?);
    decoded.logout = match r.u8()? {
        0 => None,
        n => Some(logout_reason(n - 1)?),
    };
    for _ in 0..tokens {
        decoded.tokens.push(r.text()?);
    }
    for _ in 0..refreshes {
        decoded.refreshes.push(r.text()?);
    }
    for _ in 0..wakes {
        let id = r.u64()?;
        let kind = r.u8()?;
        let code = r.u8()?;
        let generation = r.u64()?;
        let reason = if kind == WAKE_FAIL {
            Some(fail_reason(code)?)
        } else {
            None
        };
        decoded.wakes.push((id, kind, reason, generation));
    }
    r.0.is_empty().then_some(decoded)
}
