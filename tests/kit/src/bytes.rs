//! The fuzzer's byte format: a config, then host actions, each decoded from a few bytes
//! (running out of bytes reads zeros). [`encode`] is the inverse of
//! [`decode`] for the values it produces, so transcripts can seed the corpus.

use crate::harness::{Harness, HostAction};
use reauth::{Config, RefreshWindow};

const STATUSES: [u16; 4] = [200, 401, 403, 500];

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u64 {
        u64::from(self.u16()) | (u64::from(self.u16()) << 16)
    }
    fn u64(&mut self) -> u64 {
        self.u32() | (self.u32() << 32)
    }
    /// A lifetime: none, up to a minute, or anything up to `u64::MAX`.
    fn expires(&mut self) -> Option<u64> {
        match self.u8() % 4 {
            0 => None,
            3 => Some(self.u64()),
            _ => Some(u64::from(self.u16())),
        }
    }
}

/// The most actions the fuzz target decodes from one input.
pub const MAX_ACTIONS: usize = 2_000;

/// What the fuzz target checks for one input: decodes a config and its actions, drives a
/// harness with them (`prepare` sees it first: a test of the checker switches a fault on
/// there), the guarantees after every step, then G7 (settles) and G11 (replays
/// identically). The first violation, as the oracle words it.
pub fn check(data: &[u8], prepare: impl FnOnce(&mut Harness)) -> Result<(), String> {
    let (config, actions) = decode(data, MAX_ACTIONS);
    let mut harness =
        Harness::new(config).map_err(|e| format!("decoded an invalid config: {e}"))?;
    prepare(&mut harness);
    for action in actions {
        harness.run(action)?;
    }
    harness.settle()?;
    harness.replay_is_identical()
}

/// Decodes a config and at most `max_actions` actions. Every decoded config is valid.
pub fn decode(data: &[u8], max_actions: usize) -> (Config, Vec<HostAction>) {
    let mut b = Reader(data);
    let backoff = 1 + u64::from(b.u8()) * 4;
    let config = Config::default()
        .with_refresh_statuses(match b.u8() % 3 {
            0 => vec![401],
            1 => vec![401, 403],
            // No 401-triggered refresh at all (v2).
            _ => vec![],
        })
        .with_expiry_skew_ms(u64::from(b.u16()))
        .with_max_replays_per_request(u32::from(b.u8() % 4))
        .with_refresh_window(RefreshWindow::new(
            1 + u32::from(b.u8() % 6),
            1 + u64::from(b.u16()) * 4,
        ))
        .with_initial_backoff_ms(backoff)
        .with_max_backoff_ms(backoff * (1 + u64::from(b.u8() % 16)))
        .with_max_retries(u32::from(b.u8() % 5))
        .with_refresh_timeout_ms(1 + u64::from(b.u16()))
        .with_max_pending(1 + u32::from(b.u8() % 16))
        .with_max_wait_ms(1 + u64::from(b.u16()) * 2)
        .with_min_token_age_ms(u64::from(b.u8()) * 8);
    let mut actions = Vec::new();
    while !b.0.is_empty() && actions.len() < max_actions {
        actions.push(match b.u8() % 16 {
            0 => HostAction::Login {
                refresh: b.u8() % 8 != 0,
                expires: b.expires(),
            },
            1..=3 => {
                let v = b.u8();
                HostAction::Submit {
                    replayable: v % 6 != 0,
                    refresh: (v / 6) % 5 != 0,
                    route: (v / 30) % 4,
                }
            }
            4 => HostAction::Burst { n: b.u8() % 64 },
            5..=7 => HostAction::Respond {
                pick: b.u16().into(),
                status: STATUSES[usize::from(b.u8() % 4)],
            },
            8 => HostAction::RespondBogus {
                id: u64::from(b.u8()),
                status: b.u16(),
            },
            9 => HostAction::RefreshOk {
                pick: b.u16().into(),
                rotate: b.u8() % 2 == 0,
                expires: b.expires(),
                valid: b.u8() % 16 != 0,
            },
            10 => HostAction::RefreshRejected {
                pick: b.u16().into(),
            },
            11 => HostAction::RefreshTransient {
                pick: b.u16().into(),
                retry_after: if b.u8() % 2 == 0 { None } else { Some(b.u32()) },
            },
            12 => HostAction::Tick {
                ms: u64::from(b.u16()),
            },
            13 => HostAction::Backwards {
                ms: u64::from(b.u16()),
            },
            14 => match b.u8() % 8 {
                0 => HostAction::ForceRefresh,
                1 => HostAction::Logout,
                2 => HostAction::Cancel {
                    pick: b.u8().into(),
                },
                // Huge jumps, up to the end of the clock, and clock error values (§3.5).
                3 => HostAction::Tick { ms: b.u64() },
                4 => HostAction::BadClock {
                    at: b.u64(),
                    submit: b.u8() % 2 == 0,
                },
                5 => HostAction::TransportError {
                    pick: b.u8().into(),
                },
                6 => HostAction::BeginRestore,
                _ => HostAction::RestoreFailed,
            },
            _ => HostAction::Timeout,
        });
    }
    (config, actions)
}

/// Encodes `actions` after a config header that decodes to values close to
/// `config` (ranges are clamped to what the format can express). Values outside the
/// format's range are truncated.
pub fn encode(config: &Config, actions: &[HostAction]) -> Vec<u8> {
    let mut out = Vec::new();
    let u16 =
        |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&(v.min(65_535) as u16).to_le_bytes());
    let backoff = (config.initial_backoff_ms.saturating_sub(1) / 4).min(255);
    out.push(backoff as u8);
    out.push(match config.refresh_statuses.len() {
        0 => 2,
        1 => 0,
        _ => 1,
    });
    u16(&mut out, config.expiry_skew_ms);
    out.push((config.max_replays_per_request % 4) as u8);
    out.push((config.refresh_window.max_refreshes.saturating_sub(1) % 6) as u8);
    u16(
        &mut out,
        config.refresh_window.window_ms.saturating_sub(1) / 4,
    );
    let ratio = config.max_backoff_ms / (1 + backoff * 4);
    out.push((ratio.saturating_sub(1).min(15)) as u8);
    out.push((config.max_retries % 5) as u8);
    u16(&mut out, config.refresh_timeout_ms.saturating_sub(1));
    out.push((config.max_pending.saturating_sub(1) % 16) as u8);
    u16(&mut out, config.max_wait_ms.saturating_sub(1) / 2);
    out.push((config.min_token_age_ms / 8).min(255) as u8);
    let expires = |out: &mut Vec<u8>, e: Option<u64>| match e {
        None => out.push(0),
        Some(v) if v <= 65_535 => {
            out.push(1);
            u16(out, v);
        }
        Some(v) => {
            out.push(3);
            out.extend_from_slice(&v.to_le_bytes());
        }
    };
    for a in actions {
        match *a {
            HostAction::Login {
                refresh,
                expires: e,
            } => {
                out.extend([0, if refresh { 1 } else { 0 }]);
                expires(&mut out, e);
            }
            HostAction::Submit {
                replayable,
                refresh,
                route,
            } => out.extend([
                1,
                u8::from(replayable) + 6 * u8::from(refresh) + 30 * (route % 4),
            ]),
            HostAction::Burst { n } => out.extend([4, n % 64]),
            HostAction::Respond { pick, status } => {
                out.push(5);
                u16(&mut out, pick as u64);
                out.push(STATUSES.iter().position(|&s| s == status).unwrap_or(0) as u8);
            }
            HostAction::RespondBogus { id, status } => {
                out.extend([8, id.min(255) as u8]);
                u16(&mut out, status.into());
            }
            HostAction::RefreshOk {
                pick,
                rotate,
                expires: e,
                valid,
            } => {
                out.push(9);
                u16(&mut out, pick as u64);
                out.push(if rotate { 0 } else { 1 });
                expires(&mut out, e);
                out.push(if valid { 1 } else { 0 });
            }
            HostAction::RefreshRejected { pick } => {
                out.push(10);
                u16(&mut out, pick as u64);
            }
            HostAction::RefreshTransient { pick, retry_after } => {
                out.push(11);
                u16(&mut out, pick as u64);
                match retry_after {
                    None => out.push(0),
                    Some(v) => {
                        out.push(1);
                        u16(&mut out, v & 0xffff);
                        u16(&mut out, (v >> 16) & 0xffff);
                    }
                }
            }
            HostAction::Tick { ms } if ms <= 65_535 => {
                out.push(12);
                u16(&mut out, ms);
            }
            HostAction::Tick { ms } => {
                out.extend([14, 3]);
                out.extend_from_slice(&ms.to_le_bytes());
            }
            HostAction::BadClock { at, submit } => {
                out.extend([14, 4]);
                out.extend_from_slice(&at.to_le_bytes());
                out.push(if submit { 0 } else { 1 });
            }
            HostAction::Backwards { ms } => {
                out.push(13);
                u16(&mut out, ms);
            }
            HostAction::ForceRefresh => out.extend([14, 0]),
            HostAction::Logout => out.extend([14, 1]),
            HostAction::Cancel { pick } => out.extend([14, 2, pick.min(255) as u8]),
            HostAction::TransportError { pick } => out.extend([14, 5, pick.min(255) as u8]),
            HostAction::BeginRestore => out.extend([14, 6]),
            HostAction::RestoreFailed => out.extend([14, 7]),
            HostAction::Timeout => out.push(15),
        }
    }
    out
}
