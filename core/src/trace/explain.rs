//! A recording as a timeline a person reads: each input, each command it produced and
//! the rule behind it, and, when the session ended, why.

use std::fmt::Write;

use super::{Cause, Start, StartCycle, StartPhase, Step, Trace};
use crate::command::{Command, FailReason, LogoutReason, RefreshFailure};
use crate::config::Config;
use crate::credentials::Credentials;
use crate::input::Input;

impl Trace {
    /// The recording as a timeline: every input with its time, every command it produced
    /// with the rule that produced it, then a paragraph on why the session ended (or that
    /// it did not). `config` is the recording coordinator's. Tokens appear only as the
    /// recording's placeholders.
    pub fn explain(&self, config: &Config) -> String {
        let mut out = String::new();
        let (first, last) = match (self.steps.first(), self.steps.last()) {
            (Some(f), Some(l)) => (f.at, l.at),
            _ => (0, 0),
        };
        let _ = writeln!(
            out,
            "{} inputs, t = {first} to {last} ms, starting from {}.\n",
            self.steps.len(),
            start(self.start.as_ref())
        );
        let mut i = 0;
        while i < self.steps.len() {
            // A run of routine inputs (requests sent with a fresh token, answers handed
            // back, requests waiting) reads as one line.
            let run = self.steps[i..].iter().take_while(|s| routine(s)).count();
            if run >= ROUTINE_RUN {
                let steps = &self.steps[i..i + run];
                let _ = writeln!(out, "{}", summary(steps));
                i += run;
                continue;
            }
            let step = &self.steps[i];
            i += 1;
            let _ = write!(out, "t={:<8} {}", step.at, input(step));
            if let Err(e) = &step.result {
                let _ = writeln!(out, "\n           refused, nothing changed: {e}");
                continue;
            }
            if step.commands.is_empty() {
                let _ = writeln!(out, " (no commands)");
                continue;
            }
            let _ = writeln!(out);
            for (text, cause) in grouped(&step.commands) {
                let _ = writeln!(out, "           -> {text:<44} {cause}");
            }
        }
        let _ = writeln!(out, "\n{}", why(self, config));
        out
    }
}

/// Runs of at least this many routine inputs are summed up in one line.
const ROUTINE_RUN: usize = 4;

/// A step that tells nothing about the session: a submit sent with a fresh token or
/// waiting, an answer handed back.
fn routine(step: &Step) -> bool {
    match (&step.input, step.result, step.commands.as_slice()) {
        (_, Err(_), _) => false,
        (Input::Submit { .. }, _, []) => true,
        (Input::Submit { .. }, _, [(Command::Send { .. }, Cause::Rule(1))]) => true,
        (Input::Response { .. }, _, [(Command::Complete { .. }, Cause::Answered)]) => true,
        _ => false,
    }
}

fn summary(steps: &[Step]) -> String {
    let (mut sent, mut waiting, mut answered) = (0, 0, 0);
    for step in steps {
        match (&step.input, step.commands.is_empty()) {
            (Input::Submit { .. }, false) => sent += 1,
            (Input::Submit { .. }, true) => waiting += 1,
            _ => answered += 1,
        }
    }
    let (first, last) = (steps[0].at, steps[steps.len() - 1].at);
    let when = if first == last {
        format!("t={first:<8}")
    } else {
        format!("t={first}..{last}")
    };
    let parts: Vec<String> = [
        (sent, "sent with a fresh token (rule 7.1)"),
        (waiting, "waiting for a refresh (rule 7.3)"),
        (answered, "answers handed back (§6)"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    format!(
        "{when} {} routine inputs: {}",
        steps.len(),
        parts.join(", ")
    )
}

/// The commands of a batch, runs of alike ones (the same kind, reason and cause) as one
/// line each.
fn grouped(commands: &[(Command, Cause)]) -> Vec<(String, Cause)> {
    let mut lines = Vec::new();
    let mut i = 0;
    while i < commands.len() {
        let (first, cause) = &commands[i];
        let alike = 1 + commands[i + 1..]
            .iter()
            .take_while(|(c, k)| k == cause && same_kind(c, first))
            .count();
        if alike >= 3 {
            let id = |c: &Command| match c {
                Command::Send { id, .. }
                | Command::Replay { id, .. }
                | Command::Complete { id }
                | Command::Fail { id, .. } => id.0,
                _ => 0,
            };
            let (a, b) = (id(first), id(&commands[i + alike - 1].0));
            let what = match first {
                Command::Send { generation, .. } => {
                    format!("send {alike} requests (generation {generation})")
                }
                Command::Replay { generation, .. } => {
                    format!("replay {alike} requests (generation {generation})")
                }
                Command::Complete { .. } => format!("hand {alike} requests their responses"),
                Command::Fail { reason, .. } => {
                    format!("fail {alike} requests: {}", reason.as_str())
                }
                other => command(other),
            };
            lines.push((format!("{what}, {a} .. {b}"), *cause));
        } else {
            for (c, k) in &commands[i..i + alike] {
                lines.push((command(c), *k));
            }
        }
        i += alike;
    }
    lines
}

fn same_kind(a: &Command, b: &Command) -> bool {
    match (a, b) {
        (Command::Send { generation: x, .. }, Command::Send { generation: y, .. })
        | (Command::Replay { generation: x, .. }, Command::Replay { generation: y, .. }) => x == y,
        (Command::Complete { .. }, Command::Complete { .. }) => true,
        (Command::Fail { reason: x, .. }, Command::Fail { reason: y, .. }) => x == y,
        _ => false,
    }
}

fn start(start: Option<&Start>) -> String {
    let Some(s) = start else {
        return "a new coordinator".to_owned();
    };
    let open = s.requests.len();
    match &s.phase {
        StartPhase::LoggedOut => format!("logged out ({open} requests still open)"),
        StartPhase::Restoring { waiting } => format!(
            "restoring stored credentials ({} requests waiting for them)",
            waiting.len()
        ),
        StartPhase::LoggedIn(session) => {
            let refresh = match session.cycle {
                StartCycle::Idle => "no refresh running".to_owned(),
                StartCycle::InFlight { attempt, .. } => format!("refresh attempt {attempt} out"),
                StartCycle::Backoff { until, .. } => format!("refresh backing off until {until}"),
                StartCycle::Held { until, .. } => {
                    format!("a refresh rejection held until {until}")
                }
            };
            format!(
                "a session at generation {} ({} refresh token; {refresh}; {open} requests open, {} waiting)",
                session.generation,
                if session.refresh_token.is_some() {
                    "with a"
                } else {
                    "no"
                },
                session.waiting.len()
            )
        }
    }
}

fn credentials(c: &Credentials) -> String {
    let mut text = format!("access {}", c.access_token.expose());
    match &c.refresh_token {
        Some(r) => {
            let _ = write!(text, ", refresh {}", r.expose());
        }
        None => text.push_str(", no refresh token"),
    }
    if let Some(ms) = c.expires_in_ms {
        let _ = write!(text, ", lives {ms} ms");
    }
    text
}

fn input(step: &Step) -> String {
    match &step.input {
        Input::Login { credentials: c } => format!("login ({})", credentials(c)),
        Input::Submit { options } => {
            let id = match step.result {
                Ok(Some(id)) => format!(": request {id}"),
                _ => String::new(),
            };
            let mut how = Vec::new();
            if !options.replayable {
                how.push("not replayable".to_owned());
            }
            if !options.refresh {
                how.push("no refresh".to_owned());
            }
            if let Some(route) = options.route {
                how.push(format!("route {}", route.get()));
            }
            if how.is_empty() {
                format!("submit{id}")
            } else {
                format!("submit{id} ({})", how.join(", "))
            }
        }
        Input::Response { id, status } => format!("response to request {id}: HTTP {status}"),
        Input::RefreshSucceeded {
            attempt,
            credentials: c,
        } => format!("refresh attempt {attempt} succeeded ({})", credentials(c)),
        Input::RefreshFailed {
            attempt,
            failure: RefreshFailure::Rejected,
        } => format!("refresh attempt {attempt} rejected by the token endpoint"),
        Input::RefreshFailed {
            attempt,
            failure: RefreshFailure::Transient { retry_after_ms },
        } => match retry_after_ms {
            Some(ms) => {
                format!("refresh attempt {attempt} failed transiently (retry after {ms} ms)")
            }
            None => format!("refresh attempt {attempt} failed transiently"),
        },
        Input::TransportError { id } => format!("request {id} failed without an HTTP status"),
        Input::Timeout => "timer".to_owned(),
        Input::Cancel { id } => format!("the caller cancelled request {id}"),
        Input::ForceRefresh => "the app forced a refresh".to_owned(),
        Input::Logout => "the app logged out".to_owned(),
        Input::BeginRestore => "the app began restoring stored credentials".to_owned(),
        Input::RestoreFailed => "no stored credentials could be restored".to_owned(),
    }
}

fn command(command: &Command) -> String {
    match command {
        Command::Send { id, generation, .. } => {
            format!("send request {id} (generation {generation})")
        }
        Command::Replay { id, generation, .. } => {
            format!("replay request {id} (generation {generation})")
        }
        Command::Refresh {
            attempt,
            refresh_token,
        } => format!(
            "refresh, attempt {attempt}, with {}",
            refresh_token.expose()
        ),
        Command::StoreCredentials { generation, .. } => {
            format!("store the credentials of generation {generation}")
        }
        Command::Complete { id } => format!("hand request {id} its response"),
        Command::Fail { id, reason } => format!("fail request {id}: {}", reason.as_str()),
        Command::Logout { reason } => format!("log out: {}", reason.as_str()),
    }
}

/// What a rejection after a transient failure of the same cycle may mean.
fn retried_before(trace: &Trace, ended: &Step) -> String {
    let Input::RefreshFailed { attempt, .. } = ended.input else {
        return String::new();
    };
    let earlier = trace
        .steps
        .iter()
        .take_while(|s| !std::ptr::eq(*s, ended))
        .filter(|s| {
            matches!(
                s.input,
                Input::RefreshFailed {
                    attempt: a,
                    failure: RefreshFailure::Transient { .. },
                } if a < attempt
            ) || matches!(s.input, Input::Timeout) && s.commands.is_empty()
        });
    let transient: Vec<String> = earlier
        .filter_map(|s| match s.input {
            Input::RefreshFailed { attempt: a, .. } => Some(a.to_string()),
            _ => None,
        })
        .collect();
    if transient.is_empty() {
        return String::new();
    }
    let earlier = match transient.as_slice() {
        [one] => format!("attempt {one} had"),
        [rest @ .., last] => format!("attempts {} and {last} had", rest.join(", ")),
        [] => String::new(),
    };
    format!(
        ". The rejected attempt {attempt} was a retry: {earlier} failed transiently before. If the server had rotated the refresh token for it and its answer was lost, the retry presented the old one, which a server with reuse detection (RFC 9700) answers by revoking the grant"
    )
}

/// Why the session ended, from the last `Logout` in the recording.
fn why(trace: &Trace, config: &Config) -> String {
    let ended = trace.steps.iter().rev().find_map(|step| {
        step.commands.iter().find_map(|(c, cause)| match c {
            Command::Logout { reason } => Some((step, *reason, *cause)),
            _ => None,
        })
    });
    let Some((step, reason, cause)) = ended else {
        return "The session did not end within this recording.".to_owned();
    };
    let failed: Vec<FailReason> = step
        .commands
        .iter()
        .filter_map(|(c, _)| match c {
            Command::Fail { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect();
    let because = match reason {
        LogoutReason::Requested => "the app called logout itself".to_owned(),
        LogoutReason::RefreshRejected => {
            let held = if matches!(step.input, Input::Timeout) {
                format!(
                    " — after waiting {} ms (refresh_timeout_ms) for an earlier, abandoned attempt that could still have brought a rotated refresh token",
                    config.refresh_timeout_ms
                )
            } else {
                String::new()
            };
            let retried = retried_before(trace, step);
            format!(
                "the token endpoint rejected the refresh token (invalid_grant or an equivalent refusal): it has expired, was revoked, or was already used by another client that rotated it{held}; only a new login helps{retried}"
            )
        }
        LogoutReason::NoRefreshToken => {
            "the access token had to be replaced (it expired or was refused) and the session holds no refresh token to get another".to_owned()
        }
        LogoutReason::ExcessiveRefresh => format!(
            "{} refresh cycles counted within {} ms, the refresh window's limit: it stops a loop — the server kept refusing tokens it had just issued, or issued tokens that expire at once",
            config.refresh_window.max_refreshes, config.refresh_window.window_ms
        ),
    };
    let mut text = format!(
        "Why the session ended: at t={} ({}), {cause} logged out: {because}.",
        step.at,
        input(step)
    );
    if !failed.is_empty() {
        let _ = write!(
            text,
            " {} waiting request{} failed with it ({}).",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" },
            failed[0].as_str()
        );
    }
    text
}
