//! The out buffer's encodings of the core's batches and the host layer's answers.

use reauth::{Command, Coordinator, Credentials};
use reauth_host::wire;
use reauth_host::{RefreshPlan, StoredCredentials, TokenAnswer};

use crate::buffers::Out;
use crate::{command_kind, wall_ms};

/// A batch: `u32` count, then per command a `u8` kind ([`crate::kind`]) and its fields —
///
/// | kind | fields |
/// | --- | --- |
/// | send, replay | id, generation, access token |
/// | refresh | attempt, refresh token |
/// | store | generation, [`credentials`], expires_at (-1: none) |
/// | complete | id |
/// | fail | id, `u8` fail code ([`wire::fail_code`]) |
/// | logout | `u8` logout code ([`wire::logout_code`]) |
///
/// (numbers as `f64`, strings prefixed).
pub fn commands(batch: impl Iterator<Item = Command>, out: &mut Out) {
    let count_at = out.len();
    out.u32(0);
    let mut count = 0u32;
    for command in batch {
        count += 1;
        out.u8(command_kind(&command));
        match &command {
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
                out.num(id.0);
                out.num(generation.0);
                out.text(access_token.expose());
            }
            Command::Refresh {
                attempt,
                refresh_token,
            } => {
                out.num(attempt.0);
                out.text(refresh_token.expose());
            }
            Command::StoreCredentials {
                credentials: c,
                generation,
                expires_at,
            } => {
                out.num(generation.0);
                self::credentials(c, out);
                out.opt(*expires_at);
            }
            Command::Complete { id } => out.num(id.0),
            Command::Fail { id, reason } => {
                out.num(id.0);
                out.u8(wire::fail_code(*reason));
            }
            Command::Logout { reason } => out.u8(wire::logout_code(*reason)),
        }
    }
    out.vec()[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
}

/// Credentials: access token, optional refresh token, expires_in_ms (-1: none).
pub fn credentials(c: &Credentials, out: &mut Out) {
    out.text(c.access_token.expose());
    out.opt_text(c.refresh_token.as_ref().map(|t| t.expose()));
    out.opt(c.expires_in_ms);
}

/// A stored record: `u8` 0 for none, else 1, access token, optional refresh token,
/// expires_at in wall-clock ms (-1: none).
pub fn stored(stored: Option<&StoredCredentials>, out: &mut Out) {
    let Some(s) = stored else {
        out.u8(0);
        return;
    };
    out.u8(1);
    out.text(s.access_token.expose());
    out.opt_text(s.refresh_token.as_ref().map(|t| t.expose()));
    out.f64(s.expires_at.map_or(-1.0, wall_ms));
}

/// A refresh plan: `u8` 0 none, 1 adopt + [`credentials`], 2 call + the refresh token.
pub fn plan(plan: Option<&RefreshPlan>, out: &mut Out) {
    match plan {
        None => out.u8(0),
        Some(RefreshPlan::Adopt(c)) => {
            out.u8(1);
            credentials(c, out);
        }
        Some(RefreshPlan::Call(token)) => {
            out.u8(2);
            out.text(token.expose());
        }
    }
}

/// A token answer: `u8` 0 succeeded + [`credentials`] + the note (optional text);
/// 1 rejected + the error code; 2 transient + retry_after_ms (-1: none) + the problem's
/// code + its text + the rotated refresh token (optional text).
pub fn answer(answer: &TokenAnswer, out: &mut Out) {
    match answer {
        TokenAnswer::Succeeded {
            credentials: c,
            note,
        } => {
            out.u8(0);
            credentials(c, out);
            out.opt_text(note.as_ref().map(ToString::to_string).as_deref());
        }
        TokenAnswer::Rejected { error } => {
            out.u8(1);
            out.text(error);
        }
        TokenAnswer::Transient {
            retry_after_ms,
            problem,
            rotated_refresh_token,
        } => {
            out.u8(2);
            out.opt(*retry_after_ms);
            out.text(problem.code());
            out.text(&problem.to_string());
            out.opt_text(rotated_refresh_token.as_ref().map(|t| t.expose()));
        }
    }
}

/// A coordinator's state as JSON.
pub fn state(core: &Coordinator, out: &mut Out) {
    let state = serde_json::json!({
        "stats": core.stats(),
        "now": core.now(),
        "logged_in": core.is_logged_in(),
        "generation": core.generation().map(|g| g.0),
        "refreshing": core.is_refreshing(),
        "restoring": core.is_restoring(),
        "waiting": core.waiting(),
        "open": core.open_requests(),
        "config": core.config(),
    });
    out.bytes(state.to_string().as_bytes());
}
