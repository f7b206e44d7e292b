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
    // The http layer's own refusals (413 over mcp.max_body_bytes, 408,
    // broken chunked framing) are JSON-RPC errors too, like every other.
    router.error_bodies("/mcp", http_layer_error);
}

/// A JSON-RPC error (null id: the request was never read) for an error the
/// http layer answers itself, keeping its status.
fn http_layer_error(status: u16, reason: &str) -> Response {
    let code = match status {
        // The http layer's 503 is a capacity refusal (too many streams).
        503 => super::error::SERVER_BUSY,
        500.. => jsonrpc::INTERNAL_ERROR,
        _ => jsonrpc::INVALID_REQUEST,
    };
    let message = format!("{}: {reason}", crate::http::response::reason(status));
    http_error(status, code, &message)
}

/// An HTTP error whose body is a JSON-RPC error with a null id.
pub(crate) fn http_error(status: u16, code: i64, message: &str) -> Response {
    Response::json(
        status,
        jsonrpc::encode_error(None, &ErrorObject::new(code, message)),
    )
}

/// 503 for a full server (SECURITY.md M18): a JSON-RPC error (null id)
/// saying which bound was met, and `Retry-After`.
pub(crate) fn busy_error(b: super::Busy) -> Response {
    let e = super::Error::Busy(b);
    Response::json(503, jsonrpc::encode_error(None, &e.to_object(false))).header(
        "Retry-After",
        super::error::BUSY_RETRY_AFTER_SECS.to_string(),
    )
}

/// DNS-rebinding protection: `Host` (or the absolute-form authority) must be
/// allowed (M2), and so must `Origin` when present (M1). `None` = allowed.
pub(crate) fn check_origin(cfg: &McpConfig, req: &Request) -> Option<Response> {
    crate::http::origin::check(req, &cfg.allowed_hosts, &cfg.allowed_origins)
        .err()
        .map(|why| http_error(403, -32600, &why.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
