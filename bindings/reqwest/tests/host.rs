//! The host layer's failures, each as it was found (issue 19), against a scripted token
//! endpoint (answers no real server gives on purpose) and the reference server: a refused
//! login leaves the store alone, a malformed 200 that rotated keeps the rotation, an
//! endless body is cut off, `close()` ends every wait, `insufficient_scope` never
//! refreshes, and a refusing endpoint costs one refresh per token with default routes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reauth_reqwest::{
    Closed, Config, CredentialStore, Credentials, FailReason, LogoutReason, MemoryStore, Reauth,
    RequestFailed, RequestOptions,
};
use reauth_testserver::{Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;

/// What the scripted token endpoint answers to its `n`-th call (from 0).
#[derive(Clone)]
enum Reply {
    /// A status and a JSON body.
    Json(u16, &'static str),
    /// 200, then body bytes forever (chunked), until the client hangs up.
    Endless,
    /// Never answers.
    Silent,
    /// 200 with this body, then the connection closes before the stated length.
    Cut(&'static str),
}

/// A loopback server: `POST /token` answers from `script`; anything else is an API that
/// answers 200. Records every token request body.
struct Mock {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    endless_bytes: Arc<AtomicUsize>,
}

async fn mock(script: Vec<Reply>) -> Mock {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let endless_bytes = Arc::new(AtomicUsize::new(0));
    let (seen, written) = (Arc::clone(&bodies), Arc::clone(&endless_bytes));
    let calls = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let (script, seen, written, calls) = (
                script.clone(),
                Arc::clone(&seen),
                Arc::clone(&written),
                Arc::clone(&calls),
            );
            tokio::spawn(async move {
                let _ = serve(socket, &script, &seen, &written, &calls).await;
            });
        }
    });
    Mock {
        url,
        bodies,
        endless_bytes,
    }
}

async fn serve(
    mut socket: TcpStream,
    script: &[Reply],
    seen: &Mutex<Vec<String>>,
    written: &AtomicUsize,
    calls: &AtomicUsize,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        // One request: headers, then Content-Length bytes.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
        buf.drain(..head_end + length);
        if head.starts_with("get /status999") {
            // A status reqwest accepts and HTTP does not define (LinkedIn's 999).
            socket
                .write_all(b"HTTP/1.1 999 X\r\ncontent-length: 2\r\n\r\nno")
                .await?;
            continue;
        }
        if !head.starts_with("post /token") {
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await?;
            continue;
        }
        seen.lock().expect("lock").push(body);
        let n = calls.fetch_add(1, Ordering::SeqCst);
        match script
            .get(n)
            .or(script.last())
            .cloned()
            .unwrap_or(Reply::Silent)
        {
            Reply::Json(status, json) => {
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
                    json.len()
                );
                socket.write_all(reply.as_bytes()).await?;
            }
            Reply::Endless => {
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await?;
                let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
                loop {
                    socket.write_all(chunk.as_bytes()).await?;
                    written.fetch_add(0x4000, Ordering::SeqCst);
                }
            }
            Reply::Cut(json) => {
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
                    json.len() + 100
                );
                socket.write_all(reply.as_bytes()).await?;
                return Ok(());
            }
            Reply::Silent => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
    }
}

fn quick() -> Config {
    Config::default()
        .with_initial_backoff_ms(10)
        .with_max_backoff_ms(50)
        .with_refresh_timeout_ms(2_000)
}

fn store_with(access: &str, refresh: &str) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    store
        .save(&reauth_reqwest::StoredCredentials {
            access_token: access.into(),
            refresh_token: Some(refresh.into()),
            expires_at: None,
        })
        .expect("save");
    store
}

fn stored_refresh(store: &MemoryStore) -> Option<String> {
    store
        .load()
        .expect("load")
        .and_then(|s| s.refresh_token.map(|r| r.expose().to_owned()))
}

fn client(reauth: &Reauth) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(reauth.clone())
        .build()
}

/// The status of a GET that must be answered.
async fn status_of(http: &reqwest_middleware::ClientWithMiddleware, url: String) -> u16 {
    http.get(url)
        .send()
        .await
        .expect("answered")
        .status()
        .as_u16()
}

fn reason(e: &reqwest_middleware::Error) -> Option<FailReason> {
    match e {
        reqwest_middleware::Error::Middleware(e) => {
            e.downcast_ref::<RequestFailed>().map(|f| f.reason)
        }
        _ => None,
    }
}

fn closed(e: &reqwest_middleware::Error) -> bool {
    matches!(e, reqwest_middleware::Error::Middleware(e) if e.downcast_ref::<Closed>().is_some())
}

#[tokio::test]
async fn a_refused_login_changes_nothing_in_the_store() {
    let m = mock(vec![]).await;
    let store = store_with("at-1", "rt-good");
    let reauth = Reauth::builder(format!("{}/token", m.url), "app")
        .store(Arc::clone(&store))
        .build()
        .expect("restored from the store");
    for bad in ["tok\r\nX: 1", "tok en", ""] {
        let refused = reauth.login(Credentials::new(bad).with_refresh_token("new-rt"));
        assert!(refused.is_err(), "{bad:?} must be refused");
        assert_eq!(
            stored_refresh(&store).as_deref(),
            Some("rt-good"),
            "{bad:?}"
        );
    }
    assert!(reauth.is_logged_in());
    // Built with invalid credentials: refused, and nothing written.
    let empty = Arc::new(MemoryStore::new());
    let built = Reauth::builder(format!("{}/token", m.url), "app")
        .store(Arc::clone(&empty))
        .credentials(Credentials::new("a\nb").with_refresh_token("rt"))
        .build();
    assert!(built.is_err());
    assert!(empty.load().expect("load").is_none());
}

/// A session restored from a store holding `at-1`/`rt-1`, its token forced bad, and one
/// request through it: the refresh meets `script`. Returns the mock, the store, the
/// middleware and the request's status.
async fn one_refresh(script: Vec<Reply>) -> (Mock, Arc<MemoryStore>, Reauth, u16) {
    let m = mock(script).await;
    let store = store_with("at-1", "rt-1");
    let reauth = Reauth::builder(format!("{}/token", m.url), "app")
        .store(Arc::clone(&store))
        .config(quick())
        .build()
        .expect("reauth");
    reauth.force_refresh();
    let r = client(&reauth)
        .get(format!("{}/api", m.url))
        .send()
        .await
        .expect("answered");
    let status = r.status().as_u16();
    (m, store, reauth, status)
}

#[tokio::test]
async fn a_malformed_200_that_rotated_keeps_the_rotation() {
    // The first answer rotates rt-1 to rt-2 but its access token is unusable; the retry
    // must present rt-2 (presenting rt-1 again is a reuse: the family would be revoked).
    let (m, store, reauth, status) = one_refresh(vec![
        Reply::Json(200, r#"{"access_token":"bad token","token_type":"Bearer","refresh_token":"rt-2"}"#),
        Reply::Json(200, r#"{"access_token":"at-3","token_type":"Bearer","expires_in":60,"refresh_token":"rt-3"}"#),
    ])
    .await;
    assert_eq!(status, 200);
    let bodies = m.bodies.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies[0].contains("refresh_token=rt-1"), "{}", bodies[0]);
    assert!(
        bodies[1].contains("refresh_token=rt-2"),
        "the retry presents the rotation: {}",
        bodies[1]
    );
    assert_eq!(stored_refresh(&store).as_deref(), Some("rt-3"));
    assert_eq!(reauth.stats().refresh_attempts, 2);
}

/// A store shared with a sibling process that rotates the instant the refresh lock is
/// released: the sibling then holds the lock, refreshes `rt-2` to `rt-sibling` and stores
/// it (once).
struct SiblingStore {
    inner: Arc<MemoryStore>,
    rotations: Arc<AtomicUsize>,
}

struct SiblingGuard(Arc<MemoryStore>, Arc<AtomicUsize>);

impl Drop for SiblingGuard {
    fn drop(&mut self) {
        if stored_refresh(&self.0).as_deref() == Some("rt-2")
            && self.1.fetch_add(1, Ordering::SeqCst) == 0
        {
            let sibling = reauth_reqwest::StoredCredentials {
                access_token: "at-sibling".into(),
                refresh_token: Some("rt-sibling".into()),
                expires_at: Some(std::time::SystemTime::now() + Duration::from_secs(60)),
            };
            self.0.save(&sibling).expect("save");
        }
    }
}

impl CredentialStore for SiblingStore {
    fn load(&self) -> std::io::Result<Option<reauth_reqwest::StoredCredentials>> {
        self.inner.load()
    }
    fn save(&self, credentials: &reauth_reqwest::StoredCredentials) -> std::io::Result<()> {
        self.inner.save(credentials)
    }
    fn clear(&self) -> std::io::Result<()> {
        self.inner.clear()
    }
    fn lock(&self) -> std::io::Result<Box<dyn Send>> {
        Ok(Box::new(SiblingGuard(
            Arc::clone(&self.inner),
            Arc::clone(&self.rotations),
        )))
    }
}

#[tokio::test]
async fn a_sibling_rotation_right_after_the_lock_is_never_overwritten() {
    // §12.2: the refresh result is stored under the lock; the StoreCredentials that follows
    // is not written again, or it would put the spent rt-2 back over the sibling's
    // rt-sibling — and the next refresh would present rt-2: a reuse.
    let m = mock(vec![Reply::Json(
        200,
        r#"{"access_token":"at-2","token_type":"Bearer","expires_in":60,"refresh_token":"rt-2"}"#,
    )])
    .await;
    let inner = store_with("at-1", "rt-1");
    let rotations = Arc::new(AtomicUsize::new(0));
    let reauth = Reauth::builder(format!("{}/token", m.url), "app")
        .store(SiblingStore {
            inner: Arc::clone(&inner),
            rotations: Arc::clone(&rotations),
        })
        .config(quick())
        .build()
        .expect("reauth");
    let http = client(&reauth);
    reauth.force_refresh();
    assert_eq!(status_of(&http, format!("{}/api", m.url)).await, 200);
    assert_eq!(rotations.load(Ordering::SeqCst), 1);
    assert_eq!(stored_refresh(&inner).as_deref(), Some("rt-sibling"));
    // The next refresh adopts the sibling's credentials instead of presenting rt-2.
    reauth.force_refresh();
    assert_eq!(status_of(&http, format!("{}/api", m.url)).await, 200);
    let bodies = m.bodies.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1, "rt-2 presented again: {bodies:?}");
    assert_eq!(stored_refresh(&inner).as_deref(), Some("rt-sibling"));
}

#[tokio::test]
async fn a_200_that_breaks_off_after_its_rotation_keeps_it() {
    let (m, store, _reauth, status) = one_refresh(vec![
        Reply::Cut(r#"{"token_type":"Bearer","refresh_token":"rt-2","access_token":"at-"#),
        Reply::Json(
            200,
            r#"{"access_token":"at-3","token_type":"Bearer","refresh_token":"rt-3"}"#,
        ),
    ])
    .await;
    assert_eq!(status, 200);
    let bodies = m.bodies.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(
        bodies[1].contains("refresh_token=rt-2"),
        "the retry presents the rotation that arrived before the cut: {}",
        bodies[1]
    );
    assert_eq!(stored_refresh(&store).as_deref(), Some("rt-3"));
}

#[tokio::test]
async fn a_lifetime_of_nan_or_1e400_keeps_the_answer() {
    for body in [
        r#"{"access_token":"at-2","expires_in":NaN,"refresh_token":"rt-2"}"#,
        r#"{"access_token":"at-2","expires_in":1e400,"refresh_token":"rt-2"}"#,
    ] {
        let (_m, store, reauth, status) = one_refresh(vec![Reply::Json(200, body)]).await;
        assert_eq!(status, 200);
        assert_eq!(stored_refresh(&store).as_deref(), Some("rt-2"), "{body}");
        assert_eq!(reauth.stats().refresh_attempts, 1, "{body}");
    }
}

#[tokio::test]
async fn an_endless_token_response_is_cut_off() {
    let m = mock(vec![Reply::Endless]).await;
    let reauth = Reauth::builder(format!("{}/token", m.url), "app")
        .store(store_with("at-1", "rt-1"))
        .config(quick().with_max_retries(0))
        .build()
        .expect("reauth");
    reauth.force_refresh();
    let started = Instant::now();
    let e = tokio::time::timeout(
        Duration::from_secs(20),
        client(&reauth).get(format!("{}/api", m.url)).send(),
    )
    .await
    .expect("no hang")
    .expect_err("the refresh failed");
    assert_eq!(reason(&e), Some(FailReason::RefreshUnavailable), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Read up to the limit, then hung up: what the server managed to write is the limit
    // plus socket buffers, not gigabytes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written = m.endless_bytes.load(Ordering::SeqCst);
    assert!(
        written < 32 << 20,
        "{written} bytes written before the client hung up"
    );
}

#[tokio::test]
async fn close_ends_every_wait_and_refuses_later_requests() {
    let m = mock(vec![Reply::Silent]).await;
    let reauth = Reauth::builder(format!("{}/token", m.url), "app")
        .store(store_with("at-1", "rt-1"))
        .build()
        .expect("reauth");
    reauth.force_refresh();
    let http = client(&reauth);
    let waiting: Vec<_> = (0..4)
        .map(|i| {
            let (http, url) = (http.clone(), m.url.clone());
            tokio::spawn(async move { http.get(format!("{url}/api/{i}")).send().await })
        })
        .collect();
    while reauth.stats().submitted < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    reauth.close();
    for w in waiting {
        let e = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("ended by close")
            .expect("task")
            .expect_err("closed");
        assert!(closed(&e), "{e}");
    }
    let later = tokio::time::timeout(
        Duration::from_secs(1),
        http.get(format!("{}/api", m.url)).send(),
    )
    .await
    .expect("at once")
    .expect_err("closed");
    assert!(closed(&later), "{later}");
    assert_eq!(reauth.stats().submitted, 4, "nothing submitted after close");
}

async fn reference(config: ServerConfig) -> (Server, String, Credentials) {
    let server = Server::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("server");
    let url = server.url();
    let credentials = common::login(&url).await;
    (server, url, credentials)
}

/// A reference server and a session on it whose refresh statuses include 403 (so that a
/// refusal there would start a refresh).
async fn refusing_session(config: ServerConfig) -> (Server, String, Reauth) {
    let (server, url, credentials) = reference(config).await;
    let reauth = Reauth::builder(format!("{url}/oauth/token"), "app")
        .credentials(credentials)
        .config(Config::default().with_refresh_statuses([401, 403]))
        .build()
        .expect("reauth");
    (server, url, reauth)
}

#[tokio::test]
async fn insufficient_scope_is_the_callers_answer_and_never_refreshes() {
    let (server, url, reauth) = refusing_session(ServerConfig::default()).await;
    let http = client(&reauth);
    for i in 0..20 {
        assert_eq!(status_of(&http, format!("{url}/api/scoped/{i}")).await, 403);
        assert_eq!(status_of(&http, format!("{url}/api/me")).await, 200);
    }
    let s = server.stats();
    assert_eq!((s.scope_refusals, s.served, s.refresh_calls), (20, 20, 0));
    assert_eq!(reauth.stats().refresh_cycles, 0);
    assert!(reauth.is_logged_in());
    server.shutdown().await;
}

/// Contract rule 20 through default routes: an endpoint that refuses every token with a
/// bare 403 (a refresh status here), called every 100 ms beside normal traffic, with
/// 1.5 s tokens for 6 s. Each call to it is answered with its 403; it costs at most one
/// refresh per token, never a logout. (Without route keys each call spent a refresh.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_endpoint_costs_one_refresh_per_token_and_no_logout() {
    let (server, url, credentials) = reference(ServerConfig {
        access_ttl_ms: 1_500,
        ..ServerConfig::default()
    })
    .await;
    let logouts = Arc::new(Mutex::new(Vec::<LogoutReason>::new()));
    let seen = Arc::clone(&logouts);
    let reauth = Reauth::builder(format!("{url}/oauth/token"), "app")
        .credentials(credentials)
        .config(Config::default().with_refresh_statuses([401, 403]))
        .on_logout(move |ended| seen.lock().expect("lock").push(ended.reason))
        .build()
        .expect("reauth");
    let http = client(&reauth);
    let end = Instant::now() + Duration::from_secs(6);
    let normal = {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let mut ok = 0u64;
            while Instant::now() < end {
                assert_eq!(status_of(&http, format!("{url}/api/me")).await, 200);
                ok += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ok
        })
    };
    let mut refused = 0u64;
    while Instant::now() < end {
        assert_eq!(
            status_of(&http, format!("{url}/api/forbidden/admin")).await,
            403
        );
        refused += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ok = normal.await.expect("task");
    let stats = reauth.stats();
    let tokens = server.stats().tokens_issued;
    println!(
        "refusing endpoint: {refused} refused, {ok} ok, {} refresh cycles, {tokens} tokens issued, {} logouts",
        stats.refresh_cycles,
        logouts.lock().expect("lock").len()
    );
    assert!(
        refused >= 40 && ok >= 100,
        "work was done: {refused} refused, {ok} ok"
    );
    assert!(logouts.lock().expect("lock").is_empty());
    assert_eq!(
        stats.failed.unauthorized, refused,
        "each refusal handed back, counted once"
    );
    // The server states `expires_in: 1` for its 1.5 s tokens (whole seconds, rounded
    // down), so expiry alone refreshes every 0.5 s (rule 2's skew, half the lifetime): 12
    // in 6 s. The refusing endpoint may add one per token — at most as many again — never
    // one per call (that would be one per refusal, about 60).
    assert!(
        stats.refresh_cycles <= 2 * 13,
        "{} cycles",
        stats.refresh_cycles
    );
    assert!(
        stats.refresh_cycles * 2 < refused,
        "{} cycles for {refused} refusals",
        stats.refresh_cycles
    );
    server.shutdown().await;
}

#[tokio::test]
async fn per_request_options_ride_in_the_extensions() {
    let (server, url, reauth) = refusing_session(ServerConfig::default()).await;
    // A refresh opt-out (rule 19): its 403 comes back as is, no refresh, token still good.
    let r = client(&reauth)
        .get(format!("{url}/api/forbidden/x"))
        .with_extension(RequestOptions::default().with_refresh(false))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 403);
    assert_eq!(
        (reauth.stats().refresh_cycles, server.stats().refresh_calls),
        (0, 0)
    );
    server.shutdown().await;
}

/// A gate a thread blocks on until the test opens it; `entered` counts who reached it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: std::sync::Condvar,
    entered: AtomicUsize,
}

impl Gate {
    fn pass(&self) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().expect("gate");
        while !*open {
            open = self.opened.wait(open).expect("gate");
        }
    }
    fn open(&self) {
        *self.open.lock().expect("gate") = true;
        self.opened.notify_all();
    }
    async fn reached(&self) {
        while self.entered.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A store whose save blocks at a gate (a slow disk, a keychain prompt).
struct HeldStore {
    inner: MemoryStore,
    gate: Arc<Gate>,
}

impl CredentialStore for HeldStore {
    fn load(&self) -> std::io::Result<Option<reauth_reqwest::StoredCredentials>> {
        self.inner.load()
    }
    fn save(&self, credentials: &reauth_reqwest::StoredCredentials) -> std::io::Result<()> {
        self.gate.pass();
        self.inner.save(credentials)
    }
    fn clear(&self) -> std::io::Result<()> {
        self.inner.clear()
    }
    fn lock(&self) -> std::io::Result<Box<dyn Send>> {
        self.inner.lock()
    }
}

/// Runs `work` on its own thread and runtime: it must finish within 10 s (a request
/// blocked on a lock blocks its thread, so the caller's own runtime could not time it out).
fn completes<F: std::future::Future<Output = ()> + Send + 'static>(work: F, what: &str) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(work);
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what}"));
}

/// A GET through `reauth` fails with `expected` within [`completes`]' 10 s.
fn fails_in_time(reauth: &Reauth, url: String, expected: FailReason, what: &str) {
    let http = client(reauth);
    completes(
        async move {
            let failed = http.get(url).send().await;
            assert_eq!(failed.as_ref().err().and_then(reason), Some(expected));
        },
        what,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lock_is_held_across_the_store_or_the_logout_hook() {
    // Issue 20: a save that blocks (a login on one thread) and an on_logout hook that
    // blocks hold up no other request — they complete while those are still held.
    let m = mock(vec![Reply::Silent]).await;
    let inner = MemoryStore::new();
    inner
        .save(&reauth_reqwest::StoredCredentials {
            access_token: "at-1".into(),
            refresh_token: Some("rt-1".into()),
            expires_at: None,
        })
        .expect("save");
    let (saving, hook) = (Arc::new(Gate::default()), Arc::new(Gate::default()));
    let in_hook = Arc::clone(&hook);
    let reauth = Reauth::builder(format!("{}/token", m.url), "app")
        .store(HeldStore {
            inner,
            gate: Arc::clone(&saving),
        })
        .on_logout(move |_| in_hook.pass())
        .config(quick().with_max_retries(0))
        .build()
        .expect("restored from the store");
    let login = {
        let reauth = reauth.clone();
        std::thread::spawn(move || {
            reauth.login(Credentials::new("at-2").with_refresh_token("rt-2"))
        })
    };
    saving.reached().await;
    let (http, url) = (client(&reauth), format!("{}/api", m.url));
    completes(
        async move {
            for _ in 0..20 {
                assert_eq!(status_of(&http, url.clone()).await, 200);
            }
        },
        "requests waited for the store",
    );
    // A request that waits (for a refresh the silent endpoint never answers) goes through
    // the mailbox and the timer: it ends at the refresh deadline, the save still held.
    reauth.force_refresh();
    fails_in_time(
        &reauth,
        format!("{}/api", m.url),
        FailReason::RefreshUnavailable,
        "a waiting request was held up by the store",
    );
    saving.open();
    login.join().expect("login thread").expect("login");
    let logout = {
        let reauth = reauth.clone();
        std::thread::spawn(move || reauth.logout())
    };
    hook.reached().await;
    fails_in_time(
        &reauth,
        format!("{}/api", m.url),
        FailReason::NotLoggedIn,
        "a request waited for the logout hook",
    );
    // And one that waits, with the hook still held: a new session, a forced refresh.
    reauth
        .login(Credentials::new("at-3").with_refresh_token("rt-3"))
        .expect("login");
    reauth.force_refresh();
    fails_in_time(
        &reauth,
        format!("{}/api", m.url),
        FailReason::RefreshUnavailable,
        "a waiting request was held up by the logout hook",
    );
    hook.open();
    logout.join().expect("logout thread");
}

#[tokio::test]
async fn a_panicking_logout_hook_costs_no_wake() {
    // The hook runs before the wakes of the requests the logout failed: its panic must
    // not leave them waiting (they ended in the core; no timeout would come).
    let m = mock(vec![Reply::Json(400, r#"{"error":"invalid_grant"}"#)]).await;
    let reauth = Reauth::builder(format!("{}/token", m.url), "app")
        .store(store_with("at-1", "rt-1"))
        .on_logout(|_| panic!("the app's hook"))
        .config(quick())
        .build()
        .expect("reauth");
    reauth.force_refresh();
    let failed = tokio::time::timeout(
        Duration::from_secs(10),
        client(&reauth).get(format!("{}/api", m.url)).send(),
    )
    .await
    .expect("the waiting request was woken");
    assert_eq!(
        failed.as_ref().err().and_then(reason),
        Some(FailReason::RefreshRejected)
    );
    assert!(!reauth.is_logged_in());
}

#[tokio::test]
async fn a_status_outside_http_ends_the_request_in_the_core() {
    // reqwest accepts 100..=999; the core refuses a status outside 100..=599. The request
    // is ended as a transport error, not left in flight.
    let m = mock(vec![]).await;
    let reauth = Reauth::builder(format!("{}/token", m.url), "app")
        .store(store_with("at-1", "rt-1"))
        .config(quick())
        .build()
        .expect("reauth");
    let answer = client(&reauth)
        .get(format!("{}/status999", m.url))
        .send()
        .await;
    assert!(answer.is_err(), "a status the contract does not take");
    let stats = reauth.stats();
    assert_eq!(
        (stats.submitted, stats.failed.transport),
        (1, 1),
        "{stats:?}"
    );
    assert_eq!(
        status_of(&client(&reauth), format!("{}/api", m.url)).await,
        200
    );
}

/// A store that can be locked but not read (a database that went away after the lock
/// was taken): the first load — the restore at build — works, every later one fails.
struct UnreadableStore {
    inner: Arc<MemoryStore>,
    loads: AtomicUsize,
}

impl CredentialStore for UnreadableStore {
    fn load(&self) -> std::io::Result<Option<reauth_reqwest::StoredCredentials>> {
        if self.loads.fetch_add(1, Ordering::SeqCst) == 0 {
            return self.inner.load();
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "the database went away",
        ))
    }
    fn save(&self, credentials: &reauth_reqwest::StoredCredentials) -> std::io::Result<()> {
        self.inner.save(credentials)
    }
    fn clear(&self) -> std::io::Result<()> {
        self.inner.clear()
    }
    fn lock(&self) -> std::io::Result<Box<dyn Send>> {
        Ok(Box::new(()))
    }
}

#[tokio::test]
async fn a_store_that_cannot_be_read_is_not_an_empty_one() {
    // A sibling may have rotated: presenting this process's refresh token without reading
    // the store could be a reuse. The attempt is transient; the server is not called.
    let m = mock(vec![Reply::Json(
        200,
        r#"{"access_token":"at-2","token_type":"Bearer","expires_in":60,"refresh_token":"rt-2"}"#,
    )])
    .await;
    let store = Arc::new(UnreadableStore {
        inner: store_with("at-1", "rt-1"),
        loads: AtomicUsize::new(0),
    });
    let reauth = Reauth::builder(format!("{}/token", m.url), "app")
        .store(Arc::clone(&store))
        .config(quick())
        .build()
        .expect("reauth");
    reauth.force_refresh();
    // The next request refreshes: every attempt finds the store unreadable (transient),
    // until the retries run out and the request fails — never a call, never a logout.
    let _ = client(&reauth).get(format!("{}/api", m.url)).send().await;
    assert!(
        store.loads.load(Ordering::SeqCst) >= 2,
        "the refresh read the store"
    );
    assert!(
        m.bodies.lock().expect("lock").is_empty(),
        "the token endpoint was called without the store"
    );
    assert!(reauth.is_logged_in());
    assert!(
        reauth.stats().refresh_transient >= 1,
        "{:?}",
        reauth.stats()
    );
}
