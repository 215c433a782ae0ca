//! The cost budgets of the core, the thread-safe wrapper and the C ABI, measured in one
//! run against a floor measured in the same run. `scripts/bench` runs it:
//!
//! ```text
//! scripts/bench            # prints the table
//! scripts/bench --check    # also exits 1 when a budget is missed
//! ```
//!
//! Instruction counts come from `valgrind --tool=callgrind` (this binary runs itself under
//! it: `budget count WHAT N`), which are repeatable on a shared machine; each is the count
//! for N iterations minus the count for 0, divided by N. Allocations and heap bytes come
//! from a counting global allocator. Wall-clock times are printed for information only.

#[path = "../benches/support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::process::{Command as Process, ExitCode};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use reauth::{Command, Config, Coordinator, Credentials, RequestOptions};

/// Counts allocations and live heap bytes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only adds relaxed counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        LIVE.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as u64, Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        LIVE.fetch_add(new_size as u64, Relaxed);
        LIVE.fetch_sub(layout.size() as u64, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> i64 {
    LIVE.load(Relaxed) as i64
}

fn allocations() -> u64 {
    ALLOCATIONS.load(Relaxed)
}

/// A config that lets a storm of any size wait.
fn storm_config() -> Config {
    Config::default().with_max_pending(1_000_000)
}

fn logged_in(config: Config) -> Coordinator {
    let mut core = Coordinator::new(config).expect("valid config");
    core.login(0, Credentials::new("at-1").with_refresh_token("rt-1"))
        .expect("login");
    core
}

/// One request cycle on the bare core: submit → Send → 200 → Complete.
fn core_cycle(core: &mut Coordinator) {
    let id = core.submit(1, RequestOptions::default()).expect("submit");
    std::hint::black_box(core.poll_command());
    core.handle_response(2, id, 200).expect("response");
    std::hint::black_box(core.poll_command());
}

/// Puts `n` requests in flight.
fn submit_all(core: &mut Coordinator, n: u64, ids: &mut Vec<reauth::RequestId>) {
    ids.clear();
    for _ in 0..n {
        ids.push(core.submit(10, RequestOptions::default()).expect("submit"));
        std::hint::black_box(core.poll_command());
    }
}

/// `n` requests in flight → all 401 → one refresh → `n` replays → `n` 200s.
fn storm(core: &mut Coordinator, n: u64, ids: &mut Vec<reauth::RequestId>) {
    submit_all(core, n, ids);
    storm_in_flight(core, n, ids);
}

/// The storm itself, from `ids` in flight.
fn storm_in_flight(core: &mut Coordinator, n: u64, ids: &[reauth::RequestId]) {
    let mut attempt = None;
    for &id in ids.iter() {
        core.handle_response(20, id, 401).expect("401");
        while let Some(c) = core.poll_command() {
            if let Command::Refresh { attempt: a, .. } = c {
                attempt = Some(a);
            }
        }
    }
    let attempt = attempt.expect("one refresh");
    core.handle_refresh_succeeded(
        30,
        attempt,
        Credentials::new("at-2").with_refresh_token("rt-2"),
    )
    .expect("adopted");
    let mut replays = 0;
    while let Some(c) = core.poll_command() {
        replays += u64::from(matches!(c, Command::Replay { .. }));
    }
    assert_eq!(replays, n, "every request is replayed once");
    for &id in ids.iter() {
        core.handle_response(40, id, 200).expect("200");
        std::hint::black_box(core.poll_command());
    }
    assert_eq!(core.open_requests(), 0);
}

/// The fair floor: the least a correct coordinator does per request — a ring of open
/// requests with the generation each was sent with, a shared token clone per send, the
/// generation check on the response — with no lock, no refresh, no rules. What the core
/// costs over it is the price of its guarantees (reported, not budgeted).
struct Minimal {
    token: std::sync::Arc<str>,
    generation: u64,
    /// Id of `ring[0]`.
    base: u64,
    ring: std::collections::VecDeque<Option<u64>>,
}

impl Minimal {
    fn new() -> Self {
        Minimal {
            token: "at-1".into(),
            generation: 1,
            base: 0,
            ring: std::collections::VecDeque::with_capacity(8),
        }
    }

    fn submit(&mut self) -> (u64, std::sync::Arc<str>) {
        let id = self.base + self.ring.len() as u64;
        self.ring.push_back(Some(self.generation));
        (id, std::sync::Arc::clone(&self.token))
    }

    /// Whether the request completes (a 401 on the current generation would refresh).
    fn response(&mut self, id: u64, status: u16) -> bool {
        let Some(slot) = id
            .checked_sub(self.base)
            .and_then(|i| self.ring.get_mut(i as usize))
        else {
            return false;
        };
        let Some(generation) = slot.take() else {
            return false;
        };
        while self.ring.front() == Some(&None) {
            self.ring.pop_front();
            self.base += 1;
        }
        status != 401 || generation != self.generation
    }
}

/// One request cycle on the fair floor.
fn fair_cycle(minimal: &mut Minimal) {
    let (id, token) = minimal.submit();
    std::hint::black_box(token);
    std::hint::black_box(minimal.response(id, 200));
}

/// `budget count WHAT N`: the workload whose instructions callgrind counts.
fn count(what: &str, n: u64) {
    match what {
        "floor" => {
            let map = Mutex::new(HashMap::new());
            (0..n).for_each(|i| support::floor_cycle(&map, i));
        }
        "fair" => {
            let mut minimal = Minimal::new();
            (0..n).for_each(|_| fair_cycle(&mut minimal));
        }
        "core" => {
            let mut core = logged_in(Config::default());
            (0..n).for_each(|_| core_cycle(&mut core));
        }
        "shared" => {
            let shared = support::rust_coordinator();
            let mut batch = Vec::with_capacity(8);
            (0..n).for_each(|_| support::rust_cycle(&shared, &mut batch));
        }
        "c" => {
            let co = support::c_coordinator();
            let list = support::c_list();
            (0..n).for_each(|_| support::c_cycle(co, list));
            support::c_free(co, list);
        }
        "in-flight" | "storm" => {
            let mut core = logged_in(storm_config());
            let mut ids = Vec::with_capacity(n as usize);
            submit_all(&mut core, n, &mut ids);
            if n > 0 && what == "storm" {
                storm_in_flight(&mut core, n, &ids);
            }
        }
        #[cfg(feature = "trace")]
        "recording" => {
            let mut core = logged_in(Config::default());
            core.record(RECORDED);
            (0..n).for_each(|_| core_cycle(&mut core));
        }
        other => panic!("unknown workload {other}"),
    }
}

/// The recorder's capacity in the `recording` workload.
#[cfg(feature = "trace")]
const RECORDED: usize = 64;

/// `budget recorder` (built with the feature `trace`): what the flight recorder costs per
/// request cycle, compiled in and off, and on — for information, no budget.
#[cfg(feature = "trace")]
fn recorder_table() -> ExitCode {
    let off = instructions("core", 20_000);
    let on = instructions("recording", 20_000);
    println!(
        "| flight recorder (feature trace) | per request cycle (2 inputs) | vs compiled in, off |"
    );
    println!("| --- | ---: | ---: |");
    println!("| compiled in, off | {off:.0} instr | 1.00x |");
    println!(
        "| on, the last {RECORDED} inputs | {on:.0} instr ({:.0} per input recorded) | {:.2}x |",
        (on - off) / 2.0,
        on / off
    );
    // Memory: what a recording coordinator holds after 1k and after 1M request cycles
    // (2M inputs, a refresh every 10k cycles), checked to stay put (the rings and the
    // checkpoint are bounded by the capacity).
    let before = live();
    let mut core = logged_in(Config::default());
    core.record(RECORDED);
    let mut held = Vec::new();
    for cycle in 1..=1_000_000u64 {
        core_cycle(&mut core);
        if cycle % 10_000 == 0 {
            core.force_refresh(3).expect("force_refresh");
            let id = core.submit(3, RequestOptions::default()).expect("submit");
            let attempt = core.active_attempt().expect("a refresh runs");
            core.handle_refresh_succeeded(
                4,
                attempt,
                reauth::Credentials::new("at-2").with_refresh_token("rt-2"),
            )
            .expect("adopted");
            core.drain_commands().for_each(drop);
            core.handle_response(5, id, 200).expect("200");
            core.drain_commands().for_each(drop);
        }
        if cycle == 1_000 || cycle == 1_000_000 {
            held.push(live() - before);
        }
    }
    let (early, late) = (held[0], held[1]);
    let bounded = late <= early + 1_024;
    println!(
        "| memory held, recorder on ({RECORDED}): after 1k / 1M request cycles | {early} / {late} B | {} |",
        if bounded { "bounded" } else { "GROWS" }
    );
    drop(core);
    if bounded {
        ExitCode::SUCCESS
    } else {
        eprintln!("the flight recorder's memory grew from {early} B to {late} B");
        ExitCode::FAILURE
    }
}

/// Instructions per iteration of `what`, from two callgrind runs (N and 0).
fn instructions(what: &str, n: u64) -> f64 {
    counted(what, n, &[])
}

/// Instructions per iteration of `what` spent inside the library's inputs (every
/// `Coordinator` method, inclusive of what it calls), not the host loop around them.
fn instructions_in_library(what: &str, n: u64) -> f64 {
    counted(
        what,
        n,
        &[
            "--collect-atstart=no",
            "--toggle-collect=reauth::coordinator::Coordinator::*",
        ],
    )
}

fn counted(what: &str, n: u64, options: &[&str]) -> f64 {
    let run = |n: u64| -> u64 {
        let me = std::env::current_exe().expect("own path");
        let out = Process::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .args(options)
            .arg(me)
            .args(["count", what, &n.to_string()])
            .output()
            .expect("valgrind runs (install it: apt-get install valgrind)");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "the measured child failed ({what} {n}):\n{text}"
        );
        let line = text
            .lines()
            .find(|l| l.contains("Collected :"))
            .unwrap_or_else(|| panic!("no callgrind total for {what} {n}:\n{text}"));
        line.rsplit(':')
            .next()
            .and_then(|v| v.trim().replace(',', "").parse().ok())
            .expect("a number")
    };
    (run(n) as f64 - run(0) as f64) / n as f64
}

/// Allocations per iteration of `cycle`, after a warm-up.
fn allocations_per(mut cycle: impl FnMut(), n: u64) -> f64 {
    for _ in 0..100 {
        cycle();
    }
    let before = allocations();
    for _ in 0..n {
        cycle();
    }
    (allocations() - before) as f64 / n as f64
}

/// Bytes a logged-in coordinator holds (its own size plus its heap, tokens aside: the
/// credentials are allocated before the measurement starts).
fn idle_bytes(after: impl FnOnce(&mut Coordinator)) -> i64 {
    let credentials = Credentials::new("at-1").with_refresh_token("rt-1");
    let before = live();
    let mut core = Coordinator::new(Config::default()).expect("valid config");
    core.login(0, credentials).expect("login");
    after(&mut core);
    let bytes = live() - before + std::mem::size_of::<Coordinator>() as i64;
    drop(core);
    bytes
}

struct Row {
    name: String,
    measured: String,
    budget: String,
    ratio: String,
    pass: bool,
}

fn row(name: &str, measured: String, budget: String, ratio: String, pass: bool) -> Row {
    Row {
        name: name.to_owned(),
        measured,
        budget,
        ratio,
        pass,
    }
}

fn table(check: bool) -> ExitCode {
    let n = 20_000;
    let floor = instructions("floor", n);
    let fair = instructions("fair", n);
    let core = instructions("core", n);
    let shared = instructions("shared", n);
    let c = instructions("c", n);
    let mut rows = vec![
        row(
            "floor (lock + HashMap insert, lock + remove)",
            format!("{floor:.0} instr"),
            "-".into(),
            "1.00x floor".into(),
            true,
        ),
        row(
            "fair floor (a minimal correct coordinator: ring, generation check, token clone; information)",
            format!("{fair:.0} instr"),
            "-".into(),
            format!("{:.2}x floor", fair / floor),
            true,
        ),
        row(
            "Coordinator request cycle",
            format!("{core:.0} instr"),
            "<= 1.5x floor".into(),
            format!("{:.2}x floor, {:.2}x fair floor", core / floor, core / fair),
            core <= 1.5 * floor,
        ),
        row(
            "SharedCoordinator request cycle",
            format!("{shared:.0} instr"),
            "<= 2x floor".into(),
            format!("{:.2}x floor", shared / floor),
            shared <= 2.0 * floor,
        ),
        row(
            "C ABI request cycle",
            format!("{c:.0} instr"),
            "<= 2.5x floor, <= 1.3x Shared".into(),
            format!("{:.2}x floor, {:.2}x Shared", c / floor, c / shared),
            c <= 2.5 * floor && c <= 1.3 * shared,
        ),
    ];

    let mut co = logged_in(Config::default());
    let core_allocs = allocations_per(|| core_cycle(&mut co), 10_000);
    let shared_coordinator = support::rust_coordinator();
    let mut batch = Vec::with_capacity(8);
    let shared_allocs = allocations_per(
        || support::rust_cycle(&shared_coordinator, &mut batch),
        10_000,
    );
    let c_co = support::c_coordinator();
    let c_list = support::c_list();
    let c_allocs = allocations_per(|| support::c_cycle(c_co, c_list), 10_000);
    support::c_free(c_co, c_list);
    rows.push(row(
        "allocations per cycle (Coordinator / Shared / C)",
        format!("{core_allocs} / {shared_allocs} / {c_allocs}"),
        "0 / 0 / 0".into(),
        "-".into(),
        core_allocs == 0.0 && shared_allocs == 0.0 && c_allocs == 0.0,
    ));

    let sizes = [1_000u64, 10_000, 100_000, 1_000_000];
    // Instructions of the storm itself: (submits + storm) minus (submits alone) — inside
    // the library's inputs (the budget), and with the host loop that drives them.
    let per_text = |per: &[f64]| {
        per.iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let library: Vec<f64> = sizes
        .iter()
        .map(|&s| instructions_in_library("storm", s) - instructions_in_library("in-flight", s))
        .collect();
    let whole: Vec<f64> = sizes
        .iter()
        .map(|&s| instructions("storm", s) - instructions("in-flight", s))
        .collect();
    let max = |v: &[f64]| v.iter().copied().fold(0f64, f64::max);
    let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    rows.push(row(
        "401 storm from in flight: the library's inputs, instr/request (inclusive) at 1k / 10k / 100k / 1M",
        per_text(&library),
        "<= 400".into(),
        format!("{:.2}x floor at 100k", library[2] / floor),
        max(&library) <= 400.0,
    ));
    rows.push(row(
        "401 storm from in flight: with the host loop, instr/request at 1k / 10k / 100k / 1M",
        per_text(&whole),
        "<= 560".into(),
        format!("{:.2}x floor at 100k", whole[2] / floor),
        max(&whole) <= 560.0,
    ));
    rows.push(row(
        "401 storm from in flight: instr/request flat from 1k to 1M",
        per_text(&whole),
        "flat +-20%".into(),
        format!("spread {:.1}%", (max(&whole) / min(&whole) - 1.0) * 100.0),
        max(&whole) <= min(&whole) * 1.2,
    ));
    let mut ns = Vec::new();
    for &s in &sizes {
        let mut core = logged_in(storm_config());
        let mut ids = Vec::with_capacity(s as usize);
        submit_all(&mut core, s, &mut ids);
        let start = Instant::now();
        storm_in_flight(&mut core, s, &ids);
        ns.push(start.elapsed().as_nanos() as f64 / s as f64);
        if s == 100_000 {
            rows.push(row(
                "401 storm of 100k: CPU time (information)",
                format!("{:.1} ms", start.elapsed().as_secs_f64() * 1e3),
                "<= 10 ms".into(),
                "wall clock, not checked".into(),
                true,
            ));
        }
    }
    rows.push(row(
        "401 storm: ns/request at 1k / 10k / 100k / 1M (information)",
        ns.iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(" / "),
        "flat".into(),
        "wall clock, not checked".into(),
        true,
    ));

    // Heap per waiting request: a refresh runs, N requests wait for it.
    let waiting = 100_000u64;
    let mut core = logged_in(storm_config());
    core.force_refresh(1).expect("force_refresh");
    let _ = core.submit(1, RequestOptions::default()).expect("submit");
    core.drain_commands().for_each(drop);
    let before = live();
    for _ in 1..waiting {
        let _ = core.submit(2, RequestOptions::default()).expect("submit");
    }
    assert_eq!(core.waiting() as u64, waiting);
    let per_waiting = (live() - before) as f64 / (waiting - 1) as f64;
    drop(core);
    rows.push(row(
        "heap per waiting request (100k waiting)",
        format!("{per_waiting:.0} B"),
        "<= 64 B".into(),
        "-".into(),
        per_waiting <= 64.0,
    ));

    let idle = idle_bytes(|_| {});
    let after_one = idle_bytes(core_cycle);
    let after_storm = idle_bytes(|core| {
        let mut ids = Vec::new();
        storm(core, 100, &mut ids);
    });
    rows.push(row(
        "idle logged-in coordinator (fresh / after 1 request / after a 100-request storm)",
        format!("{idle} / {after_one} / {after_storm} B"),
        "<= 800 B".into(),
        "-".into(),
        idle.max(after_one).max(after_storm) <= 800,
    ));

    let mut core = logged_in(storm_config());
    core_cycle(&mut core);
    let baseline = live();
    let mut ids = Vec::with_capacity(100_000);
    storm(&mut core, 100_000, &mut ids);
    drop(ids);
    let kept = live() - baseline;
    rows.push(row(
        "memory kept after a 100k storm drains",
        format!("{kept} B"),
        "<= 1 KiB over idle".into(),
        "-".into(),
        kept <= 1024,
    ));

    match library_size() {
        Ok(size) => rows.push(row(
            "stripped libreauth_ffi.so",
            format!("{} KiB", size / 1024),
            "<= 500 KiB".into(),
            "-".into(),
            size <= 500 * 1024,
        )),
        Err(e) => rows.push(row(
            "stripped libreauth_ffi.so",
            e,
            "<= 500 KiB".into(),
            "-".into(),
            false,
        )),
    }

    println!("| measure | measured | budget | ratio | met |");
    println!("| --- | --- | --- | --- | --- |");
    for r in &rows {
        let met = match r.pass {
            _ if r.ratio.starts_with("wall clock") => "info",
            true => "yes",
            false => "NO",
        };
        println!(
            "| {} | {} | {} | {} | {met} |",
            r.name, r.measured, r.budget, r.ratio
        );
    }
    let missed = rows.iter().filter(|r| !r.pass).count();
    println!("\n{} budgets: {missed} missed", rows.len());
    if check && missed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Size of the release C library after `strip`.
fn library_size() -> Result<u64, String> {
    let lib = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("libreauth_ffi.so")))
        .ok_or("no library path")?;
    let stripped = std::env::temp_dir().join("reauth-budget-libreauth_ffi.so");
    let status = Process::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&lib)
        .status()
        .map_err(|e| format!("strip: {e}"))?;
    if !status.success() {
        return Err(format!("strip {} failed", lib.display()));
    }
    let size = std::fs::metadata(&stripped)
        .map_err(|e| e.to_string())?
        .len();
    let _ = std::fs::remove_file(&stripped);
    Ok(size)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("count") => {
            let what = args.get(1).map(String::as_str).unwrap_or("core");
            let n = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
            count(what, n);
            ExitCode::SUCCESS
        }
        Some("--check") => table(true),
        #[cfg(feature = "trace")]
        Some("recorder") => recorder_table(),
        None => table(false),
        Some(_) => {
            eprintln!(
                "usage: budget [--check] | budget count floor|core|shared|c|in-flight|storm N"
            );
            ExitCode::from(2)
        }
    }
}
