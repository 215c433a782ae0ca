//! CORS for one origin (`--cors-origin`, `Server::start_with_cors`): the headers on every
//! response, a 204 for any preflight, and nothing of it without the option.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reauth_testserver::{Server, ServerConfig};

const ORIGIN: &str = "http://127.0.0.1:4321";

async fn start(cors_origin: Option<&str>) -> (Server, reqwest::Client) {
    let server = Server::start_with_cors(
        "127.0.0.1:0".parse().expect("address"),
        ServerConfig::default(),
        cors_origin,
    )
    .await
    .expect("server starts");
    (server, reqwest::Client::new())
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().expect("an ASCII header"))
}

/// The headers every response of a CORS server carries.
fn assert_cors(r: &reqwest::Response, what: &str) {
    assert_eq!(
        header(r, "access-control-allow-origin"),
        Some(ORIGIN),
        "{what}"
    );
    assert_eq!(
        header(r, "access-control-expose-headers"),
        Some("WWW-Authenticate, Retry-After"),
        "{what}"
    );
    assert!(
        r.headers()
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("Origin"))),
        "{what}: {:?}",
        r.headers()
    );
}

async fn preflight(http: &reqwest::Client, url: &str) -> reqwest::Response {
    http.request(reqwest::Method::OPTIONS, url)
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight")
}

fn assert_preflight(r: &reqwest::Response, what: &str) {
    assert_eq!(r.status(), 204, "{what}");
    assert_cors(r, what);
    assert_eq!(
        header(r, "access-control-allow-methods"),
        Some("GET, POST"),
        "{what}"
    );
    assert_eq!(
        header(r, "access-control-allow-headers"),
        Some("Authorization, Content-Type"),
        "{what}"
    );
    assert_eq!(header(r, "access-control-max-age"), Some("600"), "{what}");
}

#[tokio::test]
async fn every_response_names_the_origin_and_exposes_the_challenge() {
    let (server, http) = start(Some(ORIGIN)).await;
    let url = server.url();

    let login = http
        .post(format!("{url}/oauth/token"))
        .header("origin", ORIGIN)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token endpoint");
    assert_eq!(login.status(), 200);
    assert_cors(&login, "a login");
    let token: serde_json::Value = login.json().await.expect("json");
    let access = token["access_token"].as_str().expect("an access token");

    let ok = http
        .get(format!("{url}/api/items/1"))
        .header("origin", ORIGIN)
        .bearer_auth(access)
        .send()
        .await
        .expect("api");
    assert_eq!(ok.status(), 200);
    assert_cors(&ok, "a 200");

    let refused = http
        .get(format!("{url}/api/items/1"))
        .header("origin", ORIGIN)
        .bearer_auth("nope")
        .send()
        .await
        .expect("api");
    assert_eq!(refused.status(), 401);
    assert_cors(&refused, "a 401");
    assert!(header(&refused, "www-authenticate").is_some_and(|c| c.contains("invalid_token")));

    let rejected = http
        .post(format!("{url}/oauth/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "never")])
        .send()
        .await
        .expect("token endpoint");
    assert_eq!(rejected.status(), 400);
    assert_cors(&rejected, "a refusal (and without an Origin header)");

    let stats = http
        .get(format!("{url}/admin/stats"))
        .send()
        .await
        .expect("stats");
    assert_cors(&stats, "the stats");
    let unknown = http
        .get(format!("{url}/nowhere"))
        .send()
        .await
        .expect("404");
    assert_eq!(unknown.status(), 404);
    assert_cors(&unknown, "a 404");

    for path in ["/api/items/1", "/oauth/token", "/admin/stats", "/nowhere"] {
        let r = preflight(&http, &format!("{url}{path}")).await;
        assert_preflight(&r, path);
        assert!(r.bytes().await.expect("body").is_empty(), "{path}");
    }
    let stats = server.stats();
    assert_eq!(
        (stats.served, stats.unauthorized, stats.refresh_calls),
        (1, 1, 1),
        "a preflight reaches no handler"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn without_an_origin_nothing_changes() {
    let (server, http) = start(None).await;
    let url = server.url();
    let r = http
        .get(format!("{url}/api/items/1"))
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 401);
    for name in [
        "access-control-allow-origin",
        "access-control-expose-headers",
        "vary",
    ] {
        assert_eq!(header(&r, name), None, "{name}");
    }
    let r = preflight(&http, &format!("{url}/api/items/1")).await;
    assert_eq!(r.status(), 405, "the router's answer, as before");
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    server.shutdown().await;
}

#[tokio::test]
async fn start_refuses_what_is_not_one_origin() {
    for bad in ["", "http://a, http://b", "http://a\nb", "http://é.example"] {
        let e = Server::start_with_cors(
            "127.0.0.1:0".parse().expect("address"),
            ServerConfig::default(),
            Some(bad),
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("{bad:?} was accepted"));
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
        assert!(e.to_string().contains("cors_origin"), "{bad:?}: {e}");
    }
}

#[test]
fn the_flag_turns_it_on_and_a_bad_origin_is_refused_naming_it() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reauth-testserver"))
        .args(["--cors-origin", ORIGIN])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .expect("the first line names the address")
        .to_owned();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let r = preflight(&http, &format!("{url}/api/items/1")).await;
        assert_preflight(&r, "through the flag");
        let r = http
            .get(format!("{url}/api/items/1"))
            .send()
            .await
            .expect("api");
        assert_eq!(r.status(), 401);
        assert_cors(&r, "through the flag");
    });
    drop(child.stdin.take());
    assert!(child.wait().expect("wait").success());

    let out = Command::new(env!("CARGO_BIN_EXE_reauth-testserver"))
        .args(["--cors-origin", "http://a, http://b"])
        .stdin(Stdio::null())
        .output()
        .expect("run the server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "never listened");
    assert!(stderr.contains("--cors-origin"), "{stderr}");
}
