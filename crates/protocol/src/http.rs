//! Pure readers of what an HTTP peer sends that every program here must bound: `Retry-After`
//! (RFC 9110 §10.2.3) and the request head a loopback listener receives from the browser. No I/O.

use std::time::{Duration, SystemTime};

/// The longest delay a server may ask for; a larger `Retry-After` is cut to it, so no server-supplied number
/// can push a retry out for ever or overflow an `Instant`.
pub const MAX_SERVER_DELAY: Duration = Duration::from_secs(3600);

/// Largest request head a loopback listener reads from the browser.
pub const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;

/// `Retry-After` as delay-seconds or an HTTP date, seen at `now`, at most [`MAX_SERVER_DELAY`]; `None` when
/// it is neither.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use amazon_rewards_protocol::http::{MAX_SERVER_DELAY, parse_retry_after};
/// assert_eq!(parse_retry_after("7", SystemTime::now()), Some(Duration::from_secs(7)));
/// assert_eq!(parse_retry_after("99999999999999999999999", SystemTime::now()), Some(MAX_SERVER_DELAY));
/// assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: too many of them for a u64 is simply a very long delay.
        value.parse::<u64>().map(Duration::from_secs).unwrap_or(MAX_SERVER_DELAY)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_SERVER_DELAY))
}

/// The request line of a request head: method, path and query parameters (decoded, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// e.g. `GET`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query's parameters.
    pub query: Vec<(String, String)>,
}

/// Reads a request head (everything up to the blank line) as a loopback listener receives it. `None` when it
/// is longer than [`MAX_REQUEST_HEAD_BYTES`], not UTF-8, or has no request line of the form
/// `METHOD TARGET HTTP/1.x`.
pub fn parse_request_head(head: &[u8]) -> Option<RequestHead> {
    if head.len() > MAX_REQUEST_HEAD_BYTES {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let line = text.split("\r\n").next()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    Some(RequestHead { method: method.to_owned(), path: path.to_owned(), query })
}

/// The first value of `name` among query parameters.
pub fn parameter<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_within_bounds() {
        let now = SystemTime::now();
        let in_a_minute = httpdate::fmt_http_date(now + Duration::from_secs(61));
        let parsed = parse_retry_after(&in_a_minute, now).unwrap();
        assert!(parsed > Duration::from_secs(59) && parsed <= Duration::from_secs(61), "{parsed:?}");
        assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now), Some(Duration::ZERO));
        for huge in ["9999999999999999999", "86400", "Fri, 31 Dec 9999 23:59:59 GMT"] {
            assert_eq!(parse_retry_after(huge, now), Some(MAX_SERVER_DELAY), "{huge}");
        }
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn request_heads() {
        let head = parse_request_head(b"GET /cb?code=a%20b&state=s HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!((head.method.as_str(), head.path.as_str()), ("GET", "/cb"));
        assert_eq!(parameter(&head.query, "code"), Some("a b"));
        for bad in
            [&b"GET /cb\r\n\r\n"[..], b"GET cb HTTP/1.1\r\n", b"\xff\xfe", b" / HTTP/1.1", b"GET / HTTP/1.1 extra"]
        {
            assert_eq!(parse_request_head(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_request_head(&vec![b'a'; MAX_REQUEST_HEAD_BYTES + 1]), None);
    }
}

/// The header every sandbox answer carries (and a backend started with `--sandbox`), with the value
/// [`SANDBOX_ENVIRONMENT`]: the game shows it (`RewardsStatus::environment`). Sandbox-defined.
pub const ENVIRONMENT_HEADER: &str = "x-amazon-rewards-environment";
/// The [`ENVIRONMENT_HEADER`] value of a sandbox.
pub const SANDBOX_ENVIRONMENT: &str = "sandbox";

/// Whether `url` points at a sandbox rather than a production service: anything not `https`, or a loopback or
/// unspecified host (`localhost`, `127.0.0.0/8`, `::1`, `0.0.0.0`). Production Amazon and a studio's
/// production backend are `https` on a public name. Used by the release guard of the plugin and the backend's
/// `--sandbox` check.
pub fn is_sandbox_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else { return true };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    }
    .to_ascii_lowercase();
    let loopback = name.is_empty()
        || name == "localhost"
        || name.ends_with(".localhost")
        || name == "::1"
        || name == "0.0.0.0"
        || name == "::"
        || name.starts_with("127.");
    !scheme.eq_ignore_ascii_case("https") || loopback
}

#[cfg(test)]
mod sandbox_url_tests {
    use super::is_sandbox_url;

    #[test]
    fn only_https_on_a_public_name_is_production() {
        for production in
            ["https://api.amazon.com", "https://twitch.amazon.com/x", "https://rewards.studio.example:8443"]
        {
            assert!(!is_sandbox_url(production), "{production}");
        }
        for sandbox in [
            "http://api.amazon.com",
            "https://127.0.0.1:8787",
            "https://localhost/x",
            "https://[::1]:9/",
            "http://127.0.0.1:8787",
            "https://user@127.0.0.1/",
            "api.amazon.com",
            "",
        ] {
            assert!(is_sandbox_url(sandbox), "{sandbox}");
        }
    }
}
