//! loom: every thread schedule of the thread-safe wrapper.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p reauth --test loom --release --target-dir target/loom
//! ```
//! The poisoned-lock path is tested with real threads in `src/shared.rs` (a panic inside
//! a loom model aborts the model rather than poisoning the lock).
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};

use loom::sync::{Arc, Mutex};
use loom::thread;
use reauth::{
    Command, Config, Coordinator, Credentials, Input, InputError, RequestId, RequestOptions,
    SharedCoordinator,
};
use reauth_testkit::oracle::{Oracle, Snapshot};

fn logged_in(requests: usize) -> (SharedCoordinator, Vec<RequestId>) {
    let shared = SharedCoordinator::new(Config::default()).expect("valid");
    shared
        .login(0, Credentials::new("at-1").with_refresh_token("rt-1"))
        .expect("login");
    let ids = (0..requests)
        .map(|_| {
            shared
                .submit(1, RequestOptions::default())
                .expect("submit")
                .0
        })
        .collect();
    (shared, ids)
}

fn refreshes(batch: &[Command]) -> usize {
    batch
        .iter()
        .filter(|c| matches!(c, Command::Refresh { .. }))
        .count()
}

fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    // A plain std counter: it is not part of the modelled concurrency.
    let schedules = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&schedules);
    loom::model(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "{name}: {} schedules explored",
        schedules.load(Ordering::Relaxed)
    );
}

/// Two (then three) threads race 401s of the same generation: exactly one `Refresh`
/// across all returned batches; after the refresh every request gets exactly one
/// terminal command.
#[test]
fn racing_401s_start_exactly_one_refresh() {
    for n in [2usize, 3] {
        model(&format!("{n} racing 401s"), move || {
            let (shared, ids) = logged_in(n);
            let shared = Arc::new(shared);
            let handles: Vec<_> = ids
                .iter()
                .map(|&id| {
                    let s = Arc::clone(&shared);
                    thread::spawn(move || s.handle_response(10, id, 401).expect("in flight"))
                })
                .collect();
            let batches: Vec<Vec<Command>> = handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect();
            let total: usize = batches.iter().map(|b| refreshes(b)).sum();
            assert_eq!(total, 1, "one refresh across {batches:?}");
            let attempt = batches
                .iter()
                .flatten()
                .find_map(|c| match c {
                    Command::Refresh { attempt, .. } => Some(*attempt),
                    _ => None,
                })
                .expect("one refresh");
            let batch = shared
                .handle_refresh_succeeded(
                    20,
                    attempt,
                    Credentials::new("at-2").with_refresh_token("rt-2"),
                )
                .expect("adopted");
            assert_eq!(batch.len(), 1 + n, "StoreCredentials and one replay each");
            let mut terminal = 0;
            for id in ids {
                let b = shared.handle_response(30, id, 200).expect("replayed");
                terminal += b.iter().filter(|c| c.is_terminal()).count();
            }
            assert_eq!(terminal, n);
        });
    }
}

/// One input applied under the lock, recorded in lock order for the oracle.
type Step = (
    Snapshot,
    u64,
    Input,
    Result<Option<RequestId>, InputError>,
    Vec<Command>,
    Coordinator,
);

fn apply_logged(
    shared: &SharedCoordinator,
    log: &Mutex<Vec<Step>>,
    at: u64,
    input: Input,
) -> Vec<Command> {
    let (batch, _) = shared
        .with(|core| {
            let before = Snapshot::of(core);
            let result = core.apply(at, input.clone());
            let batch: Vec<Command> = core.drain_commands().collect();
            log.lock().expect("log lock").push((
                before,
                at,
                input,
                result,
                batch.clone(),
                core.clone(),
            ));
            batch
        })
        .expect("not poisoned");
    batch
}

type Log = Arc<Mutex<Vec<Step>>>;

/// A session logged in and `requests` requests submitted, every step logged.
fn logged_session(requests: usize) -> (Arc<SharedCoordinator>, Log) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::new(SharedCoordinator::new(Config::default()).expect("valid"));
    let login = Input::Login {
        credentials: Credentials::new("at-1").with_refresh_token("rt-1"),
    };
    apply_logged(&shared, &log, 0, login);
    for i in 0..requests {
        let submit = Input::Submit {
            options: RequestOptions::default(),
        };
        apply_logged(&shared, &log, 1 + i as u64, submit);
    }
    (shared, log)
}

/// Replays the lock-ordered log through the oracle: every guarantee holds for this
/// schedule.
fn check_log(config: Config, log: &Mutex<Vec<Step>>) {
    let mut oracle = Oracle::new(config);
    let steps = log.lock().expect("log lock");
    for (before, at, input, result, batch, after) in steps.iter() {
        if let Err(e) = oracle.step(after, before, *at, input, result, batch) {
            panic!("{e}");
        }
    }
}

/// Three threads: a 401, a new submission and a logout race, then the refresh result
/// arrives. Checked by the oracle in lock order: one refresh, one terminal command per
/// request, nothing sent or refreshed after the logout, no resurrection.
#[test]
fn submit_401_and_logout_race() {
    model("401 / submit / logout", || {
        let (shared, log) = logged_session(1);

        let (s1, l1) = (Arc::clone(&shared), Arc::clone(&log));
        let a = thread::spawn(move || {
            apply_logged(
                &s1,
                &l1,
                10,
                Input::Response {
                    id: RequestId(1),
                    status: 401,
                },
            )
        });
        let (s2, l2) = (Arc::clone(&shared), Arc::clone(&log));
        let b = thread::spawn(move || {
            apply_logged(
                &s2,
                &l2,
                11,
                Input::Submit {
                    options: RequestOptions::default(),
                },
            )
        });
        let c = apply_logged(&shared, &log, 12, Input::Logout);
        let mut all = a.join().expect("no panic");
        all.extend(b.join().expect("no panic"));
        all.extend(c);
        // The refresh (if one started before the logout) now succeeds: it must be ignored.
        if let Some(attempt) = all.iter().find_map(|c| match c {
            Command::Refresh { attempt, .. } => Some(*attempt),
            _ => None,
        }) {
            let late = apply_logged(
                &shared,
                &log,
                20,
                Input::RefreshSucceeded {
                    attempt,
                    credentials: Credentials::new("at-2"),
                },
            );
            assert!(
                late.is_empty(),
                "a late result resurrected the session: {late:?}"
            );
        }
        assert!(refreshes(&all) <= 1);
        check_log(Config::default(), &log);
    });
}

/// A cancel races the refresh success that would release the request: the request is
/// either sent (cancel came later and forgets it) or silently dropped, never both, and
/// the refresh always completes.
#[test]
fn cancel_races_release() {
    model("cancel / refresh success", || {
        let (shared, log) = logged_session(2);
        apply_logged(
            &shared,
            &log,
            3,
            Input::Response {
                id: RequestId(1),
                status: 401,
            },
        );
        apply_logged(
            &shared,
            &log,
            4,
            Input::Response {
                id: RequestId(2),
                status: 401,
            },
        );

        let (s1, l1) = (Arc::clone(&shared), Arc::clone(&log));
        let a =
            thread::spawn(move || apply_logged(&s1, &l1, 10, Input::Cancel { id: RequestId(2) }));
        let done = apply_logged(
            &shared,
            &log,
            11,
            Input::RefreshSucceeded {
                attempt: reauth::AttemptId(1),
                credentials: Credentials::new("at-2").with_refresh_token("rt-2"),
            },
        );
        a.join().expect("no panic");
        assert!(matches!(
            done.first(),
            Some(Command::StoreCredentials { .. })
        ));
        check_log(Config::default(), &log);
    });
}

/// Each call returns exactly the commands its own input produced: a thread never sees,
/// or loses, another thread's `Send`.
#[test]
fn each_thread_gets_its_own_batch() {
    model("2 racing submits", || {
        let (shared, _) = logged_in(0);
        let shared = Arc::new(shared);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let s = Arc::clone(&shared);
                thread::spawn(move || s.submit(5, RequestOptions::default()).expect("submit"))
            })
            .collect();
        for h in handles {
            let (id, batch) = h.join().expect("no panic");
            assert_eq!(batch.len(), 1, "{batch:?}");
            assert_eq!(batch[0].request_id(), Some(id));
        }
    });
}
