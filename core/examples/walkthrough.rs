//! A narrated session against a simulated API and token endpoint: login, a storm of
//! concurrent 401s answered by one refresh, a proactive refresh before expiry, a network
//! blip on the token endpoint that backs off instead of logging out, and finally a
//! rejected refresh that fails the waiting requests and logs the user out.
//!
//! ```text
//! cargo run -p reauth --example walkthrough
//! ```

use std::collections::VecDeque;

use reauth::{
    AttemptId, Command, Config, Coordinator, Credentials, RefreshFailure, RequestId,
    RequestOptions, Timestamp,
};

/// The simulated server: the access token it currently accepts, and the refresh token it
/// will take (rotated on every use).
struct Server {
    valid_access: String,
    valid_refresh: String,
    issued: u32,
}

impl Server {
    fn status_for(&self, token: &str) -> u16 {
        if token == self.valid_access { 200 } else { 401 }
    }

    fn refresh(&mut self, refresh_token: &str) -> Option<Credentials> {
        if refresh_token != self.valid_refresh {
            return None;
        }
        self.issued += 1;
        self.valid_access = format!("access-{}", self.issued);
        self.valid_refresh = format!("refresh-{}", self.issued);
        Some(
            Credentials::new(self.valid_access.clone())
                .with_refresh_token(self.valid_refresh.clone())
                .with_expires_in_ms(60_000),
        )
    }
}

/// What the host owes the core: responses for sent requests, results for refreshes.
enum Pending {
    Http { id: RequestId, token: String },
    Refresh { attempt: AttemptId, token: String },
}

struct Host {
    core: Coordinator,
    now: Timestamp,
    pending: VecDeque<Pending>,
}

impl Host {
    fn drain(&mut self) {
        while let Some(command) = self.core.poll_command() {
            match command {
                Command::Send {
                    id,
                    access_token,
                    generation,
                } => {
                    println!("    → send     #{id} with generation {generation}");
                    self.pending.push_back(Pending::Http {
                        id,
                        token: access_token.expose().into(),
                    });
                }
                Command::Replay {
                    id,
                    access_token,
                    generation,
                } => {
                    println!("    → replay   #{id} with generation {generation}");
                    self.pending.push_back(Pending::Http {
                        id,
                        token: access_token.expose().into(),
                    });
                }
                Command::Refresh {
                    attempt,
                    refresh_token,
                } => {
                    println!("    → refresh  (attempt {attempt})");
                    self.pending.push_back(Pending::Refresh {
                        attempt,
                        token: refresh_token.expose().into(),
                    });
                }
                Command::StoreCredentials { generation, .. } => {
                    println!(
                        "    → store    credentials of generation {generation} in the keychain"
                    );
                }
                Command::Complete { id } => {
                    println!("    → complete #{id}: hand the response to its caller")
                }
                Command::Fail { id, reason } => println!("    → fail     #{id}: {reason}"),
                Command::Logout { reason } => {
                    println!("    → logout   ({reason}): wipe the keychain, show the login")
                }
            }
        }
    }

    fn tick(&mut self, ms: u64) {
        self.now += ms;
    }

    fn submit(&mut self, n: usize) {
        for _ in 0..n {
            self.core
                .submit(self.now, RequestOptions::default())
                .expect("submit");
        }
        self.drain();
    }

    /// Answers everything pending, in order, until nothing is left.
    fn serve(&mut self, server: &mut Server, token_endpoint_up: bool) {
        while let Some(p) = self.pending.pop_front() {
            self.tick(5);
            match p {
                Pending::Http { id, token } => {
                    let status = server.status_for(&token);
                    println!("  API answers #{id}: {status}");
                    self.core
                        .handle_response(self.now, id, status)
                        .expect("id is in flight");
                }
                Pending::Refresh { attempt, token } if !token_endpoint_up => {
                    let _ = token;
                    println!("  token endpoint: connection reset (transient)");
                    self.core
                        .handle_refresh_failed(
                            self.now,
                            attempt,
                            RefreshFailure::Transient {
                                retry_after_ms: None,
                            },
                        )
                        .expect("attempt was issued");
                }
                Pending::Refresh { attempt, token } => match server.refresh(&token) {
                    Some(credentials) => {
                        println!("  token endpoint: new tokens (refresh token rotated)");
                        self.core
                            .handle_refresh_succeeded(self.now, attempt, credentials)
                            .expect("valid credentials");
                    }
                    None => {
                        println!("  token endpoint: 400 invalid_grant");
                        self.core
                            .handle_refresh_failed(self.now, attempt, RefreshFailure::Rejected)
                            .expect("attempt was issued");
                    }
                },
            }
            self.drain();
        }
    }

    fn wait_for_timer(&mut self) {
        if let Some(at) = self.core.poll_timeout() {
            println!("  (timer fires after {} ms)", at.saturating_sub(self.now));
            self.now = self.now.max(at);
            self.core.handle_timeout(self.now).expect("handle_timeout");
            self.drain();
        }
    }
}

fn main() {
    let mut server = Server {
        valid_access: "access-0".into(),
        valid_refresh: "refresh-0".into(),
        issued: 0,
    };
    let config = Config::default().with_initial_backoff_ms(250);
    let mut host = Host {
        core: Coordinator::new(config).expect("valid config"),
        now: 0,
        pending: VecDeque::new(),
    };

    println!("1. Login, then three requests go out at once.");
    host.core
        .login(
            0,
            Credentials::new("access-0")
                .with_refresh_token("refresh-0")
                .with_expires_in_ms(60_000),
        )
        .expect("valid credentials");
    host.submit(3);
    host.serve(&mut server, true);

    println!("\n2. The server revokes the access token; three requests race into 401s.");
    server.valid_access = "revoked".into();
    host.submit(3);
    host.serve(&mut server, true);
    println!("   one refresh for three 401s; every request replayed once and completed.");

    println!("\n3. 45 s later the token is inside its 30 s expiry skew: refresh before sending.");
    host.tick(45_000);
    host.submit(1);
    host.serve(&mut server, true);

    println!(
        "\n4. A push says the token was revoked (force_refresh), and the token endpoint\n   is unreachable for a moment: back off and retry, never log out."
    );
    host.core.force_refresh(host.now).expect("force_refresh");
    host.submit(2);
    host.serve(&mut server, false);
    host.wait_for_timer();
    host.serve(&mut server, true);

    println!("\n5. Another device used the refresh token (reuse detected): refresh is rejected.");
    server.valid_refresh = "stolen-and-rotated-elsewhere".into();
    server.valid_access = "revoked-again".into();
    host.submit(2);
    host.serve(&mut server, true);
    host.submit(1);

    let s = host.core.stats();
    println!(
        "\nSummary: {} requests, {} sent, {} replayed, {} completed, {} failed;",
        s.submitted,
        s.sent,
        s.replayed,
        s.completed,
        s.failed.total()
    );
    println!(
        "         {} refresh cycles, {} refresh calls, {} transient failures, {} logout.",
        s.refresh_cycles, s.refresh_attempts, s.refresh_transient, s.logouts
    );
    assert_eq!(
        s.submitted,
        s.completed + s.failed.total(),
        "every request ended exactly once"
    );
}
