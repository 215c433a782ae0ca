//! Tokens and the credentials that carry them.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// The longest token the core accepts, in bytes. Real access and refresh tokens (JWTs
/// included) are a few KiB at most; anything larger is a host bug.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// A token: an access token or a refresh token.
///
/// `Debug` and `Display` print a redaction, never the token. The bytes are zeroized when
/// the last clone is dropped. Cloning is cheap (a reference count): the commands that
/// carry a token share it with the core instead of copying it.
///
/// Read the token with [`Secret::expose`] only where it is put on the wire or into
/// secure storage.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<Zeroizing<String>>);

impl Secret {
    /// Wraps a token. The string is moved, not copied.
    pub fn new(token: impl Into<String>) -> Self {
        Secret(Arc::new(Zeroizing::new(token.into())))
    }

    /// The token text. Call it only to send the token or to store it securely; never log
    /// the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length of the token in bytes (safe to log).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the token is empty (an empty token is rejected by every input).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks what every token must satisfy (contract §4.2): non-empty, at most [`MAX_TOKEN_LEN`] bytes,
    /// and no whitespace or control characters (a token goes into an HTTP header, where a
    /// CR or LF would split it).
    pub fn validate(&self, which: TokenKind) -> Result<(), CredentialsError> {
        let text = self.expose();
        if text.is_empty() {
            return Err(CredentialsError::EmptyToken(which));
        }
        if text.len() > MAX_TOKEN_LEN {
            return Err(CredentialsError::TokenTooLong(which));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(CredentialsError::InvalidTokenCharacter(which));
        }
        Ok(())
    }
}

impl From<String> for Secret {
    fn from(token: String) -> Self {
        Secret::new(token)
    }
}

impl From<&str> for Secret {
    fn from(token: &str) -> Self {
        Secret::new(token)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Deserializing a token is allowed (configs and transcripts are read from JSON);
/// serializing is not implemented on purpose, so no trace or log can carry one by accident.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// What the token endpoint returned (or what the host loaded at login).
///
/// `Debug` redacts both tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Credentials {
    /// The bearer token sent with API requests.
    pub access_token: Secret,
    /// The token used to get a new access token. `None` in a refresh result means "keep
    /// the previous one" (RFC 6749 §6: the server MAY rotate it).
    #[cfg_attr(feature = "serde", serde(default))]
    pub refresh_token: Option<Secret>,
    /// Lifetime of the access token in milliseconds from the input's `now`; `None` if
    /// the server did not say.
    #[cfg_attr(feature = "serde", serde(default))]
    pub expires_in_ms: Option<u64>,
}

impl Credentials {
    /// Credentials with an access token only.
    pub fn new(access_token: impl Into<Secret>) -> Self {
        Credentials {
            access_token: access_token.into(),
            refresh_token: None,
            expires_in_ms: None,
        }
    }

    /// Sets the refresh token.
    #[must_use]
    pub fn with_refresh_token(mut self, refresh_token: impl Into<Secret>) -> Self {
        self.refresh_token = Some(refresh_token.into());
        self
    }

    /// Sets the access token's lifetime in milliseconds.
    #[must_use]
    pub fn with_expires_in_ms(mut self, expires_in_ms: u64) -> Self {
        self.expires_in_ms = Some(expires_in_ms);
        self
    }

    /// Checks both tokens as every input does (contract §4.2): a host validates credentials
    /// before it writes them anywhere, so refused credentials change nothing on disk.
    pub fn validate(&self) -> Result<(), CredentialsError> {
        self.access_token.validate(TokenKind::Access)?;
        if let Some(refresh) = &self.refresh_token {
            refresh.validate(TokenKind::Refresh)?;
        }
        Ok(())
    }
}

/// Which token a [`CredentialsError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum TokenKind {
    /// The access token.
    Access,
    /// The refresh token.
    Refresh,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenKind::Access => "access token",
            TokenKind::Refresh => "refresh token",
        })
    }
}

/// Why credentials were refused. Never contains token text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The token is the empty string: report the refresh as failed instead.
    #[error("{0} is empty")]
    EmptyToken(TokenKind),
    /// The token is longer than [`MAX_TOKEN_LEN`] bytes.
    #[error("{0} is longer than 65536 bytes")]
    TokenTooLong(TokenKind),
    /// The token holds whitespace or a control character and cannot go into a header.
    #[error("{0} contains whitespace or a control character")]
    InvalidTokenCharacter(TokenKind),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_and_shared() {
        let s = Secret::new("hunter2-token");
        let t = s.clone();
        assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
        assert!(
            std::ptr::eq(s.expose(), t.expose()),
            "clones share one buffer"
        );
        let c = Credentials::new("at-abc").with_refresh_token("rt-def");
        let shown = format!("{c:?} {c:#?}");
        assert!(
            !shown.contains("at-abc") && !shown.contains("rt-def"),
            "{shown}"
        );
    }

    #[test]
    fn length_is_safe_to_read() {
        let s = Secret::new("abcd");
        assert_eq!((s.len(), s.is_empty()), (4, false));
        let empty = Secret::new("");
        assert_eq!((empty.len(), empty.is_empty()), (0, true));
        assert_eq!(Secret::from(String::from("xy")).expose(), "xy");
        assert_eq!(Secret::from("xyz").expose(), "xyz");
        assert_eq!(TokenKind::Refresh.to_string(), "refresh token");
        assert_eq!(TokenKind::Access.to_string(), "access token");
    }

    #[test]
    fn validation_rejects_bad_tokens_without_echoing_them() {
        assert_eq!(
            Credentials::new("").validate(),
            Err(CredentialsError::EmptyToken(TokenKind::Access))
        );
        assert_eq!(
            Credentials::new("a").with_refresh_token("").validate(),
            Err(CredentialsError::EmptyToken(TokenKind::Refresh))
        );
        let err = Credentials::new("evil\r\nX-Injected: 1")
            .validate()
            .expect_err("CRLF must be refused");
        assert!(!err.to_string().contains("evil"));
        assert_eq!(
            Credentials::new("x".repeat(MAX_TOKEN_LEN + 1)).validate(),
            Err(CredentialsError::TokenTooLong(TokenKind::Access))
        );
        assert!(
            Credentials::new("x".repeat(MAX_TOKEN_LEN))
                .validate()
                .is_ok()
        );
    }
}
