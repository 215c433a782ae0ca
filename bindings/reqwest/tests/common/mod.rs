//! What the integration tests share: logging in to the reference server.

use reauth_reqwest::Credentials;

/// A password login at the reference server at `url`: its credentials, with the lifetime
/// it states.
pub async fn login(url: &str) -> Credentials {
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "u"),
            ("password", "p"),
        ])
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("json");
    Credentials::new(body["access_token"].as_str().expect("at"))
        .with_refresh_token(body["refresh_token"].as_str().expect("rt"))
        .with_expires_in_ms(body["expires_in"].as_u64().expect("integer seconds") * 1000)
}
