//! The default route key of a request (contract rule 20, §12.4): method, origin and path.

use reauth::{RouteKey, RouteKeyBuilder};

/// The route name of a request: `METHOD scheme://host[:port]/path`, with the method in
/// upper case, scheme and host in lower case (an IPv6 literal in brackets), the scheme's
/// default port left out, the path as sent (with a leading `/`) and never the query. Two
/// requests to one endpoint get one name; the name holds no query string, so no secret
/// that a URL may carry there.
pub fn route_name(method: &str, scheme: &str, host: &str, port: Option<u16>, path: &str) -> String {
    let mut name = Vec::with_capacity(method.len() + scheme.len() + host.len() + path.len() + 12);
    spell(method, scheme, host, port, path, |b| name.push(b));
    // Only ASCII bytes were changed (case) or added, so the UTF-8 of the parts is intact.
    String::from_utf8(name).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The route key for [`route_name`]: what every adapter passes with each request unless
/// the caller names a route itself, so that a refusing endpoint costs at most one refresh
/// per token (rule 20) without the app doing anything. Allocates nothing: the name is
/// hashed as it is spelled.
pub fn default_route(
    method: &str,
    scheme: &str,
    host: &str,
    port: Option<u16>,
    path: &str,
) -> RouteKey {
    let mut key = RouteKeyBuilder::default();
    spell(method, scheme, host, port, path, |b| key.push(b));
    key.finish()
}

/// Spells the route name byte by byte into `emit`.
fn spell(
    method: &str,
    scheme: &str,
    host: &str,
    port: Option<u16>,
    path: &str,
    mut emit: impl FnMut(u8),
) {
    let default_port = match scheme.len() {
        4 if scheme.eq_ignore_ascii_case("http") => Some(80),
        2 if scheme.eq_ignore_ascii_case("ws") => Some(80),
        5 if scheme.eq_ignore_ascii_case("https") => Some(443),
        3 if scheme.eq_ignore_ascii_case("wss") => Some(443),
        _ => None,
    };
    let path = path.as_bytes();
    let path = &path[..path
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(path.len())];
    for &b in method.as_bytes() {
        emit(b.to_ascii_uppercase());
    }
    emit(b' ');
    for &b in scheme.as_bytes() {
        emit(b.to_ascii_lowercase());
    }
    for &b in b"://" {
        emit(b);
    }
    // An IPv6 literal is bracketed however the client hands it over (httpx strips the
    // brackets, reqwest and OkHttp keep them), so every binding names it alike.
    let host = host.as_bytes();
    let bracket = host.first() != Some(&b'[') && host.contains(&b':');
    if bracket {
        emit(b'[');
    }
    for &b in host {
        emit(b.to_ascii_lowercase());
    }
    if bracket {
        emit(b']');
    }
    if let Some(p) = port.filter(|p| Some(*p) != default_port) {
        emit(b':');
        let mut digits = [0u8; 5];
        let mut n = p;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &d in digits[..len].iter().rev() {
            emit(d);
        }
    }
    if path.first() != Some(&b'/') {
        emit(b'/');
    }
    for &b in path {
        emit(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_per_endpoint() {
        let n = |m, s, h, p, path| route_name(m, s, h, p, path);
        assert_eq!(
            n("get", "HTTPS", "Api.Example.com", Some(443), "/me"),
            "GET https://api.example.com/me"
        );
        assert_eq!(n("GET", "http", "h", Some(80), ""), "GET http://h/");
        assert_eq!(
            n("POST", "http", "h", Some(8080), "/a?token=secret"),
            "POST http://h:8080/a"
        );
        assert_eq!(n("GET", "https", "h", None, "/a#frag"), "GET https://h/a");
        assert_eq!(
            n("GET", "http", "::1", Some(8080), "/a"),
            "GET http://[::1]:8080/a"
        );
        assert_eq!(
            n("GET", "http", "[::1]", Some(8080), "/a"),
            "GET http://[::1]:8080/a"
        );
        assert_eq!(n("GET", "wss", "h", Some(443), "/s"), "GET wss://h/s");
        assert_ne!(
            n("GET", "https", "h", None, "a/b"),
            n("GET", "https", "ha", None, "/b")
        );
        assert_ne!(
            default_route("GET", "https", "h", None, "/a"),
            default_route("POST", "https", "h", None, "/a")
        );
        assert_ne!(
            default_route("GET", "https", "h", None, "/a"),
            default_route("GET", "https", "h", None, "/b")
        );
        assert_eq!(
            default_route("GET", "https", "h", Some(443), "/a?x=1"),
            default_route("get", "HTTPS", "H", None, "/a")
        );
    }
}
