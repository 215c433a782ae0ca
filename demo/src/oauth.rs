//! The two token-endpoint calls both demo clients make (RFC 6749 §4.3 and §6).

/// A token endpoint answer.
#[derive(serde::Deserialize)]
pub struct TokenBody {
    /// The new access token.
    pub access_token: String,
    /// The new refresh token, if the server rotated it.
    pub refresh_token: Option<String>,
    /// Lifetime of the access token in seconds (an integer, RFC 6749 A.14; a float is
    /// accepted too).
    pub expires_in: Option<f64>,
}

impl TokenBody {
    /// The credentials reauth takes.
    pub fn credentials(self) -> reauth::Credentials {
        let mut c = reauth::Credentials::new(self.access_token);
        if let Some(r) = self.refresh_token {
            c = c.with_refresh_token(r);
        }
        if let Some(e) = self.expires_in.filter(|e| e.is_finite() && *e >= 0.0) {
            c = c.with_expires_in_ms((e * 1000.0) as u64);
        }
        c
    }
}

/// Logs in with the password grant (the reference server accepts any user).
pub async fn password_login(http: &reqwest::Client, base: &str) -> Result<TokenBody, String> {
    http.post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "demo"),
            ("password", "demo"),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

/// Sends `grant_type=refresh_token`; the caller interprets the response.
pub async fn refresh(
    http: &reqwest::Client,
    base: &str,
    refresh_token: &str,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
}
