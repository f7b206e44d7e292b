//! MCP transports: Streamable HTTP and legacy HTTP+SSE on the http layer's
//! router, and stdio.

pub mod legacy_sse;
pub mod stdio;
mod stream;
pub mod streamable;

#[doc(hidden)]
pub use stream::parse_event_id;
pub(crate) use stream::SessionStreams;

use super::jsonrpc::{self, ErrorObject};
use super::McpConfig;
use crate::http::{Method, Mode, Request, Response, Router};
use std::sync::Arc;

/// Registers `POST/GET/DELETE /mcp` and `GET /mcp/sse` for `server`.
pub fn routes(router: &mut Router, server: Arc<super::Server>) {
    let max = server.cfg.max_body_bytes;
    let s = server.clone();
    router.route_with_limit(
        Method::Post,
        "/mcp",
        Mode::Inline,
        max,
        move |req: &mut Request, cx: &mut crate::http::Cx<'_>| streamable::post(&s, req, cx),
    );
    let s = server.clone();
    router.route(
        Method::Get,
        "/mcp",
        Mode::Inline,
        move |req: &mut Request, cx: &mut crate::http::Cx<'_>| streamable::get(&s, req, cx),
    );
    let s = server.clone();
    router.route(
        Method::Delete,
        "/mcp",
        Mode::Inline,
        move |req: &mut Request, _: &mut crate::http::Cx<'_>| streamable::delete(&s, req).into(),
    );
    let s = server;
    router.route(
        Method::Get,
        "/mcp/sse",
        Mode::Inline,
        move |req: &mut Request, cx: &mut crate::http::Cx<'_>| legacy_sse::open(&s, req, cx),
    );
}

/// An HTTP error whose body is a JSON-RPC error with a null id.
pub(crate) fn http_error(status: u16, code: i64, message: &str) -> Response {
    Response::json(
        status,
        jsonrpc::encode_error(None, &ErrorObject::new(code, message)),
    )
}

/// The host part of an authority or origin (`[::1]` keeps its brackets), lowercased.
fn host_of(authority: &str) -> String {
    let a = authority.trim();
    let host = if a.starts_with('[') {
        a.find(']').map_or(a, |i| &a[..=i])
    } else {
        a.rsplit_once(':').map_or(a, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                a
            }
        })
    };
    host.to_ascii_lowercase()
}

/// DNS-rebinding protection: `Host` (or the absolute-form authority) must be
/// allowed (M2), and so must `Origin` when present (M1). `None` = allowed.
pub(crate) fn check_origin(cfg: &McpConfig, req: &Request) -> Option<Response> {
    let allowed = |list: &[String], host: &str| list.iter().any(|h| h.eq_ignore_ascii_case(host));
    if let Some(host) = req.host() {
        if !allowed(&cfg.allowed_hosts, &host_of(host)) {
            return Some(http_error(403, -32600, "Forbidden: Host not allowed"));
        }
    }
    if let Some(origin) = req.header_str("origin") {
        let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        if origin == "null" || !allowed(&cfg.allowed_origins, &host_of(authority)) {
            return Some(http_error(403, -32600, "Forbidden: Origin not allowed"));
        }
    } else if req.header("origin").is_some() {
        return Some(http_error(403, -32600, "Forbidden: Origin not allowed"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_extracted_without_ports() {
        assert_eq!(host_of("localhost:8080"), "localhost");
        assert_eq!(host_of("LOCALHOST"), "localhost");
        assert_eq!(host_of("[::1]:9"), "[::1]");
        assert_eq!(host_of("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_of("evil.example.com:80"), "evil.example.com");
    }

    #[test]
    fn origin_and_host_allow_list() {
        let cfg = McpConfig::default();
        let req = |h: &[(&str, &str)]| Request::synthetic(Method::Post, "/mcp", h, b"");
        assert!(check_origin(&cfg, &req(&[("Host", "localhost:3000")])).is_none());
        assert!(check_origin(
            &cfg,
            &req(&[
                ("Host", "127.0.0.1:3000"),
                ("Origin", "http://localhost:5173")
            ])
        )
        .is_none());
        assert_eq!(
            check_origin(&cfg, &req(&[("Host", "evil.example.com")])).map(|r| r.status()),
            Some(403)
        );
        assert_eq!(
            check_origin(
                &cfg,
                &req(&[("Host", "localhost"), ("Origin", "http://evil.example.com")])
            )
            .map(|r| r.status()),
            Some(403)
        );
        assert_eq!(
            check_origin(&cfg, &req(&[("Host", "localhost"), ("Origin", "null")]))
                .map(|r| r.status()),
            Some(403)
        );
    }
}
