//! The rules of `docs/contract.md` §7 as data, in the manner of h11's transition tables:
//! each rule's number, its name (the contract's bold title), the inputs it reacts to, the
//! commands it may emit and the code that carries it out. The contract's rule index and
//! the rules → code table at the top of the coordinator are generated from [`RULES`] and
//! checked against it (`core/tests/contract.rs`), as is the README's state diagram, so
//! none of them can drift from the others; a checker or a trace can cite a rule by
//! number and name from here.

/// One rule of the contract (§7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its number in §7.
    pub number: u8,
    /// Its name: the contract's bold title, without the final period.
    pub name: &'static str,
    /// The inputs it reacts to (§5), by the method's name.
    pub on: &'static [&'static str],
    /// The commands it may emit (§6); empty for a rule that only makes requests wait or
    /// changes what later inputs do.
    pub emits: &'static [&'static str],
    /// Where the coordinator carries it out (`Type::method`).
    pub code: &'static [&'static str],
}

/// The rule numbered `number`, if there is one.
pub fn rule(number: u8) -> Option<&'static Rule> {
    RULES.get(usize::from(number).checked_sub(1)?)
}

/// Every rule of §7, in order.
pub const RULES: [Rule; 20] = [
    Rule {
        number: 1,
        name: "Fresh token",
        on: &["submit"],
        emits: &["Send"],
        code: &["Engine::dispatch"],
    },
    Rule {
        number: 2,
        name: "Proactive refresh",
        on: &["submit", "force_refresh"],
        emits: &["Refresh"],
        code: &["Engine::dispatch", "Engine::start_cycle"],
    },
    Rule {
        number: 3,
        name: "Join, never duplicate",
        on: &["submit", "handle_response"],
        emits: &[],
        code: &["Engine::dispatch"],
    },
    Rule {
        number: 4,
        name: "Stale 401",
        on: &["handle_response"],
        emits: &["Replay"],
        code: &["Coordinator::refused", "Engine::dispatch"],
    },
    Rule {
        number: 5,
        name: "Current 401",
        on: &["handle_response"],
        emits: &["Refresh"],
        code: &["Coordinator::refused", "Engine::dispatch"],
    },
    Rule {
        number: 6,
        name: "Replay budget",
        on: &["handle_response"],
        emits: &["Fail"],
        code: &["Coordinator::refused"],
    },
    Rule {
        number: 7,
        name: "Refresh window: loops, not lifetimes",
        on: &["submit", "handle_response", "force_refresh"],
        emits: &["Fail", "Logout"],
        code: &["Engine::start_cycle", "Session::accepted"],
    },
    Rule {
        number: 8,
        name: "Success",
        on: &["handle_refresh_succeeded"],
        emits: &["StoreCredentials", "Send", "Replay"],
        code: &[
            "Coordinator::handle_refresh_succeeded",
            "Engine::release_waiting",
        ],
    },
    Rule {
        number: 9,
        name: "Rejected",
        on: &["handle_refresh_failed", "handle_timeout"],
        emits: &["Fail", "Logout"],
        code: &[
            "Coordinator::handle_refresh_failed",
            "Coordinator::handle_timeout",
            "Coordinator::end_session",
        ],
    },
    Rule {
        number: 10,
        name: "Transient",
        on: &["handle_refresh_failed", "handle_timeout"],
        emits: &["Refresh", "Fail"],
        code: &["Engine::retry_or_give_up", "Coordinator::handle_timeout"],
    },
    Rule {
        number: 11,
        name: "Deadline and staleness",
        on: &[
            "handle_timeout",
            "handle_refresh_succeeded",
            "handle_refresh_failed",
        ],
        emits: &["StoreCredentials", "Send", "Replay"],
        code: &[
            "Coordinator::handle_timeout",
            "Coordinator::handle_refresh_succeeded",
            "Coordinator::handle_refresh_failed",
        ],
    },
    Rule {
        number: 12,
        name: "Logout is final",
        on: &["logout", "handle_response", "handle_refresh_succeeded"],
        emits: &["Complete", "Fail", "Logout"],
        code: &["Coordinator::end_session", "Coordinator::refused"],
    },
    Rule {
        number: 13,
        name: "No refresh token",
        on: &["submit", "handle_response", "force_refresh"],
        emits: &["Fail", "Logout"],
        code: &["Engine::start_cycle", "Engine::issue_attempt"],
    },
    Rule {
        number: 14,
        name: "One-shot requests",
        on: &["handle_response"],
        emits: &["Complete", "Refresh"],
        code: &["Coordinator::refused"],
    },
    Rule {
        number: 15,
        name: "Bounded waiting",
        on: &["submit", "handle_response", "handle_timeout"],
        emits: &["Fail"],
        code: &["Engine::wait", "Engine::expire_waiting"],
    },
    Rule {
        number: 16,
        name: "Logged out",
        on: &["submit"],
        emits: &["Fail"],
        code: &["Coordinator::submit"],
    },
    Rule {
        number: 17,
        name: "Transport errors",
        on: &["handle_transport_error"],
        emits: &["Fail"],
        code: &["Coordinator::handle_transport_error"],
    },
    Rule {
        number: 18,
        name: "Restoring",
        on: &[
            "begin_restore",
            "submit",
            "login",
            "restore_failed",
            "logout",
        ],
        emits: &["Send", "Fail", "Logout"],
        code: &[
            "Coordinator::begin_restore",
            "Coordinator::restore_failed",
            "Coordinator::submit",
            "Coordinator::install",
        ],
    },
    Rule {
        number: 19,
        name: "Refresh opt-out",
        on: &["handle_response"],
        emits: &["Complete"],
        code: &["Coordinator::refused"],
    },
    Rule {
        number: 20,
        name: "A refusing endpoint costs the request, not the session",
        on: &["handle_response"],
        emits: &["Fail", "Complete"],
        code: &["Coordinator::refused"],
    },
];

#[cfg(test)]
mod tests {
    use super::{RULES, rule};

    #[test]
    fn rules_are_found_by_their_number() {
        for (i, r) in RULES.iter().enumerate() {
            assert_eq!(usize::from(r.number), i + 1);
            assert_eq!(rule(r.number), Some(r));
        }
        assert_eq!(rule(0), None);
        assert_eq!(rule(21), None);
        assert_eq!(rule(9).map(|r| r.name), Some("Rejected"));
    }
}
