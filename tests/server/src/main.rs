//! `reauth-testserver`: runs the reference token server.
//!
//! Prints `listening on http://127.0.0.1:PORT` as its first line, so tests in any
//! language can start it and read the port. Exits on SIGTERM, Ctrl-C, or when its
//! standard input is closed. A fault rate that is not a finite number within 0..=1, or a
//! `--cors-origin` that is not one origin, is refused at start (exit status 2, the flag
//! named on standard error). `--cors-origin ORIGIN` turns CORS on for that origin (a page
//! of another origin may call the server); it is off by default.

use std::io::Write;
use std::net::SocketAddr;

use clap::{CommandFactory, Parser};
use reauth_testserver::{Server, ServerConfig};
use tokio::io::AsyncReadExt;

#[derive(Parser)]
#[command(
    about = "Reference OAuth token server with rotation, reuse detection and fault injection"
)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Access-token lifetime in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    access_ttl_ms: u64,
    /// Delay of every refresh answer in milliseconds.
    #[arg(long, default_value_t = 0)]
    refresh_latency_ms: u64,
    /// Share of refresh calls answered 503.
    #[arg(long, default_value_t = 0.0)]
    token_5xx_rate: f64,
    /// Share of refresh calls answered 429 (Retry-After 1–3 s).
    #[arg(long, default_value_t = 0.0)]
    token_429_rate: f64,
    /// Share of refresh calls whose connection is closed before any response.
    #[arg(long, default_value_t = 0.0)]
    dropped_connection_rate: f64,
    /// Share of refreshes that rotate, then lose the response after the status line.
    #[arg(long, default_value_t = 0.0)]
    lost_response_rate: f64,
    /// How long the refresh token rotated last is accepted again, in milliseconds; 0 is a
    /// strict server (any reuse revokes the family at once).
    #[arg(long, alias = "reuse-grace-ms", default_value_t = 2_000)]
    grace_ms: u64,
    /// Seed of the fault dice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Answer CORS for this origin (e.g. http://127.0.0.1:8080): every response allows it
    /// and exposes WWW-Authenticate and Retry-After; OPTIONS preflights get 204. Off by
    /// default.
    #[arg(long, value_name = "ORIGIN", value_parser = origin)]
    cors_origin: Option<String>,
}

/// `--cors-origin`: one origin, checked as the server checks it.
fn origin(value: &str) -> Result<String, String> {
    reauth_testserver::cors_origin(value).map(|_| value.to_owned())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let a = Args::parse();
    let config = ServerConfig {
        access_ttl_ms: a.access_ttl_ms,
        refresh_latency_ms: a.refresh_latency_ms,
        token_5xx_rate: a.token_5xx_rate,
        token_429_rate: a.token_429_rate,
        dropped_connection_rate: a.dropped_connection_rate,
        lost_response_rate: a.lost_response_rate,
        reuse_grace_ms: a.grace_ms,
        seed: a.seed,
    };
    if let Err(e) = config.validate() {
        // The fields are named after the flags.
        let flag = format!("--{}", e.field().replace('_', "-"));
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "invalid value '{}' for '{flag}': {}",
                    e.value(),
                    e.expected()
                ),
            )
            .exit();
    }
    let server = Server::start_with_cors(a.bind, config, a.cors_origin.as_deref()).await?;
    println!("listening on {}", server.url());
    std::io::stdout().flush()?;

    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        while let Ok(n) = stdin.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = stdin_closed => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let stats = server.stats();
    server.shutdown().await;
    eprintln!("stopped; {stats:?}");
    Ok(())
}
