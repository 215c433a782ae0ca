//! What the middleware costs per request in instructions (valgrind's callgrind): bare
//! reqwest, reqwest-middleware with a middleware that only sets the header, and
//! reauth-reqwest, each sending N sequential requests with a long-lived token to the
//! reference server running in *another* process, so that only the client is counted.
//! Instruction counts repeat to a few parts per million on a shared machine where
//! wall-clock ratios move by ±5 %; the per-request figure is the difference of a run of
//! 1,200 requests and one of 200 (start-up, log-in and warm-up cancel out).
//!
//!     cargo run --release -p reauth-reqwest --example instructions -- [--check]
//!
//! `--check` exits 1 when reauth-reqwest costs more than its budget over the header-only
//! middleware (`scripts/test` runs it).

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

use reauth_reqwest::Reauth;

#[path = "../tests/common/mod.rs"]
mod common;

/// The clients measured, by the name the child process is given.
const CLIENTS: [(&str, &str); 3] = [
    ("bare", "bare reqwest"),
    ("header", "a header-only middleware"),
    ("reauth", "reauth-reqwest"),
];

/// reauth-reqwest's own cost over reqwest-middleware with a header-only middleware.
const BUDGET_OVER_MIDDLEWARE: f64 = 1.05;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => {
            serve();
            ExitCode::SUCCESS
        }
        Some("count") => {
            let n = args[3].parse().expect("a number of requests");
            count(&args[1], &args[2], n);
            ExitCode::SUCCESS
        }
        Some("--check") => table(true),
        None => table(false),
        Some(_) => {
            eprintln!("usage: instructions [--check]");
            ExitCode::from(2)
        }
    }
}

/// The reference server with a long-lived token, until stdin closes.
fn serve() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let config = reauth_testserver::ServerConfig {
            access_ttl_ms: 3_600_000,
            ..Default::default()
        };
        let server = reauth_testserver::Server::start("127.0.0.1:0".parse().expect("addr"), config)
            .await
            .expect("server");
        println!("{}", server.url());
        tokio::task::spawn_blocking(|| std::io::stdin().lines().for_each(drop))
            .await
            .expect("stdin");
    });
}

/// The workload callgrind counts: log in, then `n` sequential GETs with `client`.
fn count(client: &str, url: &str, n: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let credentials = common::login(url).await;
        let bearer = format!("Bearer {}", credentials.access_token.expose());
        let api = format!("{url}/api/items/1");
        let reauth = Reauth::builder(format!("{url}/oauth/token"), "bench")
            .credentials(credentials)
            .build()
            .expect("reauth");
        let middleware = match client {
            "bare" => None,
            "header" => Some(
                reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                    .with(common::Bearer(bearer.clone()))
                    .build(),
            ),
            "reauth" => Some(
                reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                    .with(reauth.clone())
                    .build(),
            ),
            other => panic!("unknown client {other}"),
        };
        let bare = reqwest::Client::new();
        for _ in 0..n {
            let response = match &middleware {
                None => bare.get(&api).header("authorization", &bearer).send().await,
                Some(c) => c.get(&api).send().await.map_err(|e| match e {
                    reqwest_middleware::Error::Reqwest(e) => e,
                    e => panic!("{e}"),
                }),
            };
            let response = response.expect("answered");
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("body");
        }
        assert_eq!(reauth.stats().refresh_attempts, 0, "a long-lived token");
    });
}

/// Instructions per request of `client`: (1,200 requests − 200 requests) / 1,000.
fn per_request(client: &str, url: &str) -> f64 {
    let run = |n: u64| -> f64 {
        let me = std::env::current_exe().expect("own path");
        let out = Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(me)
            .args(["count", client, url, &n.to_string()])
            .output()
            .expect("valgrind runs (install it: apt-get install valgrind)");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{client} {n} failed:\n{text}");
        text.lines()
            .find_map(|l| l.split("Collected :").nth(1))
            .and_then(|v| v.trim().replace(',', "").parse().ok())
            .unwrap_or_else(|| panic!("no callgrind total for {client} {n}:\n{text}"))
    };
    (run(1_200) - run(200)) / 1_000.0
}

fn table(check: bool) -> ExitCode {
    let me = std::env::current_exe().expect("own path");
    let mut server = Command::new(me)
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server process");
    let mut url = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut url)
        .expect("the server's url");
    let url = url.trim().to_owned();
    let counts: Vec<f64> = CLIENTS.iter().map(|(c, _)| per_request(c, &url)).collect();
    drop(server.stdin.take()); // the server ends with its stdin
    let _ = server.wait();

    println!(
        "reqwest, instructions per request of the client process (callgrind; the server runs apart)"
    );
    println!("| client | instructions | vs bare reqwest | vs header-only middleware |");
    println!("| --- | ---: | ---: | ---: |");
    for ((_, name), n) in CLIENTS.iter().zip(&counts) {
        println!(
            "| {name} | {n:.0} | {:.3}× | {:.3}× |",
            n / counts[0],
            n / counts[1]
        );
    }
    let over = counts[2] / counts[1];
    let met = over <= BUDGET_OVER_MIDDLEWARE;
    println!(
        "\nreauth-reqwest: +{:.0} instructions per request over the header-only middleware ({over:.3}×, budget <= {BUDGET_OVER_MIDDLEWARE}×: {}); \
         reqwest-middleware itself: +{:.0} over bare reqwest",
        counts[2] - counts[1],
        if met { "met" } else { "MISSED" },
        counts[1] - counts[0],
    );
    if check && !met {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
