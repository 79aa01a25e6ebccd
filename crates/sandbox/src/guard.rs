//! What keeps a web page in the developer's browser from driving the sandbox (DNS rebinding, cross-site
//! requests): every request must name a loopback host, and admin calls that come from a page must come from
//! the sandbox's own origin. Tools and tests send no `Origin` and are not affected.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Whether a `Host` (or an origin's host part) names this machine: `localhost`, `127.0.0.1` (any
/// `127.x.y.z`) or `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host
            .rsplit_once(':')
            .map_or(host, |(name, port)| if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host }),
    };
    name.eq_ignore_ascii_case("localhost")
        || name == "::1"
        || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses requests whose `Host` is not a loopback name: a rebinding DNS name pointing at 127.0.0.1 still
/// carries its own name in `Host`.
pub async fn loopback_host(request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if !is_loopback_host(host) {
        return (StatusCode::FORBIDDEN, "the sandbox answers only to loopback host names").into_response();
    }
    next.run(request).await
}

/// Refuses admin calls from a page of another origin (browsers name it in `Origin`).
pub async fn same_origin_admin(request: Request, next: Next) -> Response {
    if request.uri().path().starts_with(amazon_rewards_protocol::sandbox_admin::ADMIN_PREFIX)
        && cross_origin(request.headers())
    {
        return (StatusCode::FORBIDDEN, "admin calls from another origin are refused").into_response();
    }
    next.run(request).await
}

/// Whether the request names an `Origin` other than the host it was sent to.
fn cross_origin(headers: &header::HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|value: &header::HeaderValue| value.to_str().ok());
    let Some(origin) = text(header::ORIGIN) else {
        return false;
    };
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    !origin_host.eq_ignore_ascii_case(text(header::HOST).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_names() {
        for host in ["127.0.0.1:8787", "127.0.0.1", "localhost:1", "LOCALHOST", "[::1]:8787", "127.1.2.3:9"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["evil.example", "evil.example:8787", "10.0.0.1:8787", "", "127.0.0.1.evil.example", "[::2]:1"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
