//! The middleware next to bare reqwest on loopback against the reference server with a
//! long-lived token (no refresh): interleaved rounds, the median ratio to bare reqwest in
//! the same round, sequential and with concurrent tasks. For reading (scripts/bench-adapters
//! runs it); the allocation budget is a test (tests/allocations.rs).
//!
//!     cargo run --release -p reauth-reqwest --example bench -- [REQUESTS] [ROUNDS] [TASKS]

use std::time::Instant;

use reauth_reqwest::{Credentials, Reauth};
use reauth_testserver::{Server, ServerConfig};

#[derive(Clone)]
enum Client {
    Bare(reqwest::Client, String),
    Reauth(reqwest_middleware::ClientWithMiddleware),
}

impl Client {
    async fn get(&self, url: &str) {
        let response = match self {
            Client::Bare(c, bearer) => c.get(url).header("authorization", bearer).send().await,
            Client::Reauth(c) => c.get(url).send().await.map_err(|e| match e {
                reqwest_middleware::Error::Reqwest(e) => e,
                e => panic!("{e}"),
            }),
        };
        let response = response.expect("answered");
        assert_eq!(response.status(), 200);
        response.bytes().await.expect("body");
    }
}

async fn run(client: &Client, url: &str, requests: usize, tasks: usize) -> f64 {
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (client, url) = (client.clone(), url.to_owned());
        handles.push(tokio::spawn(async move {
            for i in 0..requests / tasks {
                client.get(&format!("{url}/{}", (i + t) % 16)).await;
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let requests = args.next().unwrap_or(4000);
    let rounds = args.next().unwrap_or(9);
    let tasks = args.next().unwrap_or(32);
    let config = ServerConfig {
        access_ttl_ms: 3_600_000,
        ..ServerConfig::default()
    };
    let server = Server::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("server");
    let url = server.url();
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "u"),
            ("password", "p"),
        ])
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let access = token["access_token"].as_str().expect("at");
    let credentials = Credentials::new(access)
        .with_refresh_token(token["refresh_token"].as_str().expect("rt"))
        .with_expires_in_ms(3_600_000);
    let reauth = Reauth::builder(format!("{url}/oauth/token"), "bench")
        .credentials(credentials)
        .build()
        .expect("reauth");
    let clients = [
        (
            "bare reqwest",
            Client::Bare(reqwest::Client::new(), format!("Bearer {access}")),
        ),
        (
            "a header-only middleware",
            Client::Reauth(
                reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                    .with(Bearer(format!("Bearer {access}")))
                    .build(),
            ),
        ),
        (
            "reauth-reqwest",
            Client::Reauth(
                reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                    .with(reauth.clone())
                    .build(),
            ),
        ),
    ];
    let api = format!("{url}/api/items");
    for (_, client) in &clients {
        run(client, &api, 500, 1).await; // warm
    }
    println!(
        "reqwest, {requests} requests x {rounds} interleaved rounds; median ratio to bare reqwest in the same round"
    );
    println!("| mode | client | µs/request | ratio |\n| --- | --- | ---: | ---: |");
    for t in [1, tasks] {
        let mut times = vec![Vec::new(); clients.len()];
        for r in 0..rounds {
            for i in 0..clients.len() {
                let k = (i + r) % clients.len();
                times[k].push(run(&clients[k].1, &api, requests, t).await);
            }
        }
        let mode = if t == 1 {
            "sequential".to_owned()
        } else {
            format!("{t} tasks")
        };
        for (k, (name, _)) in clients.iter().enumerate() {
            let ratios = times[k].iter().zip(&times[0]).map(|(a, b)| a / b).collect();
            let us = median(times[k].clone()) / requests as f64 * 1e6;
            println!("| {mode} | {name} | {us:.0} | {:.2}× |", median(ratios));
        }
    }
    assert_eq!(reauth.stats().refresh_attempts, 0, "a long-lived token");
}

/// What reqwest-middleware itself costs: a middleware that only sets the header.
struct Bearer(String);

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Bearer {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let value = http::HeaderValue::from_str(&self.0).expect("header");
        req.headers_mut().insert(http::header::AUTHORIZATION, value);
        next.run(req, extensions).await
    }
}
