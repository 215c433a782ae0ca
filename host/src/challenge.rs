//! RFC 6750 §3: what a `WWW-Authenticate: Bearer …` challenge says about a refusal.

/// The `error` of a Bearer challenge (RFC 6750 §3.1). Exhaustive on purpose: bindings
/// convert it variant by variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BearerError {
    /// `invalid_token`: expired, revoked, malformed — a refresh may help.
    InvalidToken,
    /// `insufficient_scope`: the token is valid but not allowed here. The caller's answer:
    /// never a reason to refresh (contract §12.4).
    InsufficientScope,
    /// `invalid_request`: the request is malformed.
    InvalidRequest,
    /// Another error code.
    Other,
}

impl BearerError {
    /// Whether a refusal with this challenge is the caller's answer, not the token's
    /// problem: the host ends the request with the response instead of reporting a
    /// refresh status (contract §12.4).
    pub fn is_callers_answer(self) -> bool {
        matches!(self, BearerError::InsufficientScope)
    }
}

/// The `error` of the Bearer challenge among `values` (every `WWW-Authenticate` header of
/// one response; a header may hold several challenges, RFC 9110 §11.6.1). `None` when
/// there is no Bearer challenge or it names no error (a request without credentials).
pub fn bearer_error<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<BearerError> {
    values.into_iter().find_map(|v| {
        let code = Challenges::new(v).find_map(|(scheme, params)| {
            if !scheme.eq_ignore_ascii_case("bearer") {
                return None;
            }
            // RFC 9110 §11.2: a parameter name appears once per challenge. Two different
            // `error`s say nothing for sure: read as none.
            let mut errors = params
                .into_iter()
                .filter(|(k, _)| k == "error")
                .map(|(_, v)| v);
            let first = errors.next()?;
            errors.all(|other| other == first).then_some(first)
        })?;
        Some(match code.as_str() {
            "invalid_token" => BearerError::InvalidToken,
            "insufficient_scope" => BearerError::InsufficientScope,
            "invalid_request" => BearerError::InvalidRequest,
            _ => BearerError::Other,
        })
    })
}

type Params = Vec<(String, String)>;

/// The challenges of one header value: `scheme [param=value, …]`, comma-separated, where
/// a new challenge starts at a token not followed by `=`.
struct Challenges<'a> {
    rest: &'a str,
}

impl<'a> Challenges<'a> {
    fn new(value: &'a str) -> Self {
        Challenges { rest: value }
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn take_token(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !is_tchar(c)).unwrap_or(s.len());
    s.split_at(end)
}

/// A quoted-string at the start of `s` (after the quote): its unescaped text and the rest.
fn take_quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

impl Iterator for Challenges<'_> {
    type Item = (String, Params);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest.trim_start_matches([' ', '\t', ',']);
        let (scheme, mut s) = take_token(s);
        if scheme.is_empty() {
            self.rest = "";
            return None;
        }
        // A token68 (`Negotiate abc==`): the challenge's only content.
        let t = s.trim_start_matches([' ', '\t']);
        let n = t
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-._~+/".contains(c)))
            .unwrap_or(t.len());
        let after = t[n..]
            .trim_start_matches('=')
            .trim_start_matches([' ', '\t']);
        if n > 0 && (after.is_empty() || after.starts_with(',')) {
            self.rest = after;
            return Some((scheme.to_owned(), Vec::new()));
        }
        let mut params = Vec::new();
        loop {
            let after_ws = s.trim_start_matches([' ', '\t', ',']);
            let (name, after_name) = take_token(after_ws);
            let Some(value_part) = after_name.trim_start_matches([' ', '\t']).strip_prefix('=')
            else {
                // Not a parameter: the next challenge, or the end.
                self.rest = if name.is_empty() { "" } else { after_ws };
                return Some((scheme.to_owned(), params));
            };
            if name.is_empty() {
                self.rest = "";
                return Some((scheme.to_owned(), params));
            }
            let value_part = value_part.trim_start_matches([' ', '\t']);
            let (value, rest) = if let Some(quoted) = value_part.strip_prefix('"') {
                match take_quoted(quoted) {
                    Some(v) => v,
                    None => {
                        self.rest = "";
                        return Some((scheme.to_owned(), params));
                    }
                }
            } else {
                let (v, r) = take_token(value_part);
                (v.to_owned(), r)
            };
            params.push((name.to_ascii_lowercase(), value));
            s = rest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6750_examples() {
        // §3: a request without credentials — no error code.
        assert_eq!(bearer_error([r#"Bearer realm="example""#]), None);
        // §3: the expired-token example.
        assert_eq!(
            bearer_error([
                r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#
            ]),
            Some(BearerError::InvalidToken)
        );
        assert_eq!(
            bearer_error([r#"Bearer error="insufficient_scope", scope="admin""#]),
            Some(BearerError::InsufficientScope)
        );
        assert_eq!(
            bearer_error([r#"Bearer error=invalid_request"#]),
            Some(BearerError::InvalidRequest)
        );
    }

    #[test]
    fn several_challenges_and_headers() {
        assert_eq!(
            bearer_error([r#"Basic realm="x", Bearer realm="y", error="insufficient_scope""#]),
            Some(BearerError::InsufficientScope)
        );
        assert_eq!(
            bearer_error([r#"Basic realm="x""#, r#"bearer ERROR="insufficient_scope""#]),
            Some(BearerError::InsufficientScope)
        );
        assert_eq!(
            bearer_error([r#"Negotiate abc==, Bearer error="invalid_token""#]),
            Some(BearerError::InvalidToken)
        );
        // An error parameter of another scheme is not the Bearer challenge's.
        assert_eq!(bearer_error([r#"DPoP error="insufficient_scope""#]), None);
        assert_eq!(
            bearer_error([r#"Bearer realm="a \"quoted\" realm", error="x_y""#]),
            Some(BearerError::Other)
        );
        // The same parameter twice with different values: ambiguous, read as none.
        assert_eq!(
            bearer_error([r#"Bearer error="insufficient_scope", error="invalid_token""#]),
            None
        );
        // A quoted-pair is unescaped (RFC 9110 §5.6.4).
        assert_eq!(
            bearer_error([r#"Bearer error="insufficient\_scope""#]),
            Some(BearerError::InsufficientScope)
        );
        for garbage in [
            "",
            ",,,",
            "Bearer",
            "Bearer error=",
            "Bearer error=\"open",
            "=\"x\"",
        ] {
            assert!(
                matches!(bearer_error([garbage]), None | Some(BearerError::Other)),
                "{garbage:?}"
            );
        }
    }
}
