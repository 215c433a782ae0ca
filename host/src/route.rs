//! The default route key of a request (contract rule 20, §12.4): method, origin and path.

use reauth::RouteKey;

/// The route name of a request: `METHOD scheme://host[:port]/path`, with the method in
/// upper case, scheme and host in lower case (an IPv6 literal in brackets), the scheme's
/// default port left out, the path as sent (with a leading `/`) and never the query. Two requests to one endpoint
/// get one name; the name holds no query string, so no secret that a URL may carry there.
pub fn route_name(method: &str, scheme: &str, host: &str, port: Option<u16>, path: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let host = host.to_ascii_lowercase();
    // An IPv6 literal is bracketed however the client hands it over (httpx strips the
    // brackets, reqwest and OkHttp keep them), so every binding names it alike.
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let mut name = format!("{} {}://{}", method.to_ascii_uppercase(), scheme, host);
    if let Some(p) = port.filter(|p| Some(*p) != default_port) {
        name.push_str(&format!(":{p}"));
    }
    if !path.starts_with('/') {
        name.push('/');
    }
    name.push_str(path);
    name
}

/// The route key for [`route_name`]: what every adapter passes with each request unless
/// the caller names a route itself, so that a refusing endpoint costs at most one refresh
/// per token (rule 20) without the app doing anything.
pub fn default_route(
    method: &str,
    scheme: &str,
    host: &str,
    port: Option<u16>,
    path: &str,
) -> RouteKey {
    RouteKey::from_name(&route_name(method, scheme, host, port, path))
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
