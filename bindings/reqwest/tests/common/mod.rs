//! What the integration tests and the bench example share: logging in to the reference
//! server, and a middleware that only sets the bearer header (what reqwest-middleware
//! itself costs).

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

/// A middleware that only sets `Authorization` to its value: the framework's own cost,
/// next to which the adapter is measured.
#[allow(dead_code)] // only the allocation test and the bench example use it
pub struct Bearer(pub String);

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
