//! HTTP/1.1 parsing and framing, responses, routing and SSE encoding.
//!
//! A connection is one [`conn::Conn`] state machine driven by the `net`
//! loop. Requests are parsed with httparse plus our own framing rules
//! (SECURITY.md §1–2), routed by method and path, and handled inline or on
//! the rayon pool; responses go out strictly in request order.
//!
//! Invariant: nothing in this module knows MCP, JSON-RPC or models.
//! Invariant: every framing doubt is answered with its status and a close; we never resync.
//! Invariant: no status number is chosen outside `ParseError::status` for protocol errors.

mod chunked;
mod conn;
mod date;
mod error;
pub mod framing;
mod handler;
pub mod limits;
mod metrics;
pub mod origin;
pub mod parse;
mod request;
pub mod response;
mod router;
pub mod sse;
mod stream;

pub use chunked::{ChunkedDecoder, Progress};
pub use error::ParseError;
pub use handler::{Cx, Handler, Mode, Msg, Reply, Responder};
pub use limits::Limits;
pub use metrics::Metrics;
pub use request::{Method, Request};
pub use response::Response;
pub use router::{json_error_body, ErrorBody, Match, Route, Router};
pub use stream::{encode_shared, SendError, SseSender, SseStream};

use crate::net;
use std::sync::Arc;

/// Authenticates requests before their handlers run (every route not marked
/// [`Router::public`]).
pub trait Guard: Send + Sync + 'static {
    /// The principal the request is authenticated as (`None` if the guard
    /// does not name one), or the response that refuses it (401/403/400).
    fn check(&self, req: &Request) -> Result<Option<String>, Response>;
}

/// Everything the connections of one server share.
pub struct Service {
    /// The routes.
    pub router: Router,
    /// Limits and timeouts.
    pub limits: Limits,
    /// Where request metrics go.
    pub metrics: Metrics,
    /// Authentication, if on.
    pub guard: Option<Arc<dyn Guard>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("router", &self.router)
            .field("auth", &self.guard.is_some())
            .finish()
    }
}

/// Starts serving `service` with the network settings in `net_cfg`.
pub fn serve(net_cfg: net::Config, service: Service) -> Result<net::Server, net::Error> {
    let drain = service.limits.drain_timeout;
    service.metrics.bind(&service.router);
    let share = usize::from(service.limits.max_streams_percent.min(100));
    let max_streams = (net_cfg.max_connections.saturating_mul(share) / 100).max(1);
    let streams = stream::StreamCap::new(max_streams, service.limits.max_streams_per_client);
    let factory = conn::Factory {
        svc: Arc::new(service),
        streams: Arc::new(streams),
    };
    net::start(net_cfg, drain, Arc::new(factory))
}
