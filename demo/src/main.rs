//! The reauth demo: many concurrent clients, 1.5 s access tokens with rotating refresh
//! tokens, against the reference token server — through reauth, and through the naive
//! hand-written approach, side by side.
//!
//! ```text
//! cargo run --release -p reauth-demo                    # both strategies, default load
//! cargo run --release -p reauth-demo -- --chaos         # flaky token endpoint + 401 storms
//! cargo run --release -p reauth-demo -- --strategy reauth --clients 256 --seconds 10
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use reauth_demo::run::{Load, Report, run_naive, run_reauth};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Strategy {
    Reauth,
    Naive,
    Both,
}

#[derive(Parser)]
#[command(about = "reauth against a real token server, next to the naive approach")]
struct Args {
    /// Which client(s) to run.
    #[arg(long, value_enum, default_value = "both")]
    strategy: Strategy,
    /// Concurrent clients sharing one session.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds of load per strategy.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Access-token lifetime in milliseconds.
    #[arg(long, default_value_t = 1_500)]
    ttl_ms: u64,
    /// Token endpoint faults (15% 503, 10% 429, 10% dropped connections, 10% lost
    /// responses, 30 ms latency) and a forced 401 storm every second.
    #[arg(long)]
    chaos: bool,
    /// No grace window at the server: a reused refresh token revokes its family at once.
    #[arg(long)]
    strict: bool,
    /// Seed of the server's fault dice. The default makes the first five refresh calls
    /// of a chaos run meet every fault kind (lost response, dropped connection, 503, 429).
    #[arg(long, default_value_t = 521)]
    seed: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Write the flight recording of each logout reauth meets to DIR/logout-N.json (a
    /// transcript: replay it, or explain it with
    /// `cargo run -p reauth-testkit --bin explain -- FILE`).
    #[arg(long, value_name = "DIR")]
    save_recordings: Option<std::path::PathBuf>,
}

fn row(label: &str, values: &[String]) {
    print!("  {label:<34}");
    for v in values {
        print!("{v:>14}");
    }
    println!();
}

fn table(reports: &[Report]) {
    let v = |f: &dyn Fn(&Report) -> String| reports.iter().map(f).collect::<Vec<_>>();
    println!();
    row("", &v(&|r| r.strategy.to_owned()));
    row("requests", &v(&|r| r.requests.to_string()));
    row("  answered 200", &v(&|r| r.ok.to_string()));
    row("  lost (no response)", &v(&|r| r.lost().to_string()));
    let mut reasons: Vec<String> = reports
        .iter()
        .flat_map(|r| r.failed.keys().cloned())
        .collect();
    reasons.sort();
    reasons.dedup();
    for reason in reasons {
        row(
            &format!("    failed: {reason}"),
            &v(&|r| r.failed.get(&reason).copied().unwrap_or(0).to_string()),
        );
    }
    row(
        "401s sent by the API",
        &v(&|r| r.server.unauthorized.to_string()),
    );
    row("replays after a 401", &v(&|r| r.replays.to_string()));
    row("refresh cycles", &v(&|r| r.refresh_cycles.to_string()));
    row(
        "refresh calls (server)",
        &v(&|r| r.server.refresh_calls.to_string()),
    );
    row(
        "  transient retries",
        &v(&|r| r.transient_retries.to_string()),
    );
    row("  rotations", &v(&|r| r.server.rotations.to_string()));
    row(
        "  grace replays (previous token)",
        &v(&|r| r.server.grace_replays.to_string()),
    );
    row(
        "  503 / 429 / dropped / lost injected",
        &v(&|r| {
            format!(
                "{}/{}/{}/{}",
                r.server.token_5xx,
                r.server.token_429,
                r.server.dropped_connections,
                r.server.lost_responses
            )
        }),
    );
    row(
        "reuse detections (family revoked)",
        &v(&|r| r.server.reuse_detections.to_string()),
    );
    row("logouts", &v(&|r| r.logouts.to_string()));
    row("forced 401 storms", &v(&|r| r.storms.to_string()));
    println!();
}

/// reauth's promises, checked on the numbers.
fn verdict(r: &Report, load: &Load) -> bool {
    let calls_add_up = r.server.refresh_calls == r.refresh_cycles + r.transient_retries;
    let no_duplicates = if calls_add_up {
        format!(
            "refresh calls {} = {} cycles + {} transient retries (no duplicate refresh)",
            r.server.refresh_calls, r.refresh_cycles, r.transient_retries
        )
    } else {
        format!(
            "refresh calls {} != {} cycles + {} transient retries",
            r.server.refresh_calls, r.refresh_cycles, r.transient_retries
        )
    };
    // Which faults the run met (chaos must meet every kind, or it proves less).
    let s = &r.server;
    let kinds = [
        ("503", s.token_5xx),
        ("429", s.token_429),
        ("dropped connection", s.dropped_connections),
        ("lost response", s.lost_responses),
    ];
    let faults = kinds
        .iter()
        .map(|(k, n)| format!("{k} x{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let missing: Vec<&str> = kinds
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(k, _)| *k)
        .collect();
    let exercised = !load.chaos || missing.is_empty();
    // On a strict server a lost response leaves the client without the rotated token: its
    // retry presents the old one and the family is revoked — the one logout no client can
    // avoid. Anything else that logs out is a fault of the client.
    let explained = r.server.reuse_detections
        <= if load.strict {
            r.server.lost_responses
        } else {
            0
        }
        && r.logouts <= r.server.reuse_detections;
    let clean = if r.logouts == 0 {
        r.lost() == 0
    } else {
        explained
    };
    let pass = calls_add_up && exercised && explained && clean;
    println!(
        "verdict (reauth): {} lost, {} logouts, {} reuse detections; {}{}{}{} -> {}",
        r.lost(),
        r.logouts,
        r.server.reuse_detections,
        no_duplicates,
        if load.chaos {
            format!("; faults met: {faults}")
        } else {
            String::new()
        },
        if !exercised {
            format!(
                " (not met: {}; run longer or pick another --seed)",
                missing.join(", ")
            )
        } else {
            String::new()
        },
        if r.logouts > 0 && explained {
            format!(
                "; the logout{} forced by {} lost response{} on a strict server (reuse detection, RFC 9700), not by a duplicate refresh",
                if r.logouts == 1 { " was" } else { "s were" },
                r.server.lost_responses,
                if r.server.lost_responses == 1 {
                    ""
                } else {
                    "s"
                },
            )
        } else {
            String::new()
        },
        if pass { "PASS" } else { "FAIL" }
    );
    pass
}

/// Prints why each logout happened, from the adapter's flight recorder, and saves the
/// recordings when asked.
fn recordings(r: &Report, dir: Option<&std::path::Path>) -> bool {
    for (i, (explanation, transcript)) in r.recordings.iter().enumerate() {
        println!(
            "\nlogout {} of {}, from reauth's flight recorder:\n",
            i + 1,
            r.recordings.len()
        );
        print!("{explanation}");
        if let Some(dir) = dir {
            let path = dir.join(format!("logout-{}.json", i + 1));
            let saved =
                std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, transcript));
            match saved {
                Ok(()) => println!("(recording saved to {})", path.display()),
                Err(e) => {
                    eprintln!("could not save {}: {e}", path.display());
                    return false;
                }
            }
        }
    }
    true
}

fn naive_verdict(r: &Report) {
    let duplicates = r.server.refresh_calls.saturating_sub(r.server.rotations);
    println!(
        "naive: {} refresh calls for {} rotations ({} duplicates), {} reuse detections, {} logouts, {} lost requests",
        r.server.refresh_calls,
        r.server.rotations,
        duplicates,
        r.server.reuse_detections,
        r.logouts,
        r.lost()
    );
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    let load = Load {
        clients: a.clients.max(1),
        duration: Duration::from_secs(a.seconds.max(1)),
        ttl_ms: a.ttl_ms.max(100),
        chaos: a.chaos,
        strict: a.strict,
        seed: a.seed,
        progress: !a.quiet,
    };
    println!(
        "{} clients, {} s, {} ms access tokens, rotating refresh tokens with reuse detection{}",
        load.clients,
        load.duration.as_secs(),
        load.ttl_ms,
        match (load.chaos, load.strict) {
            (false, false) => "",
            (true, false) =>
                ", chaos: 15% 503, 10% 429, 10% dropped connections, 10% lost refresh responses, 401 storm every second",
            (false, true) =>
                ", strict server: no grace window, a reused refresh token revokes its family at once",
            (true, true) => ", chaos on a strict server (no grace window)",
        }
    );
    let mut reports = Vec::new();
    if a.strategy != Strategy::Naive {
        reports.push(run_reauth(&load).await);
    }
    if a.strategy != Strategy::Reauth {
        reports.push(run_naive(&load).await);
    }
    table(&reports);
    let mut ok = true;
    for r in &reports {
        if r.strategy == "reauth" {
            ok &= recordings(r, a.save_recordings.as_deref());
            ok &= verdict(r, &load);
        } else {
            naive_verdict(r);
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
