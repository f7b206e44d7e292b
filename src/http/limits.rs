//! Every HTTP limit in one place, each with its default and where it comes from
//! (SECURITY.md §1.2).

use crate::util::duration_ms;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Request line cap (L1). nginx and Apache: 8 KiB; RFC 9112 §3 asks for ≥ 8000.
pub const DEFAULT_MAX_REQUEST_LINE_BYTES: usize = 8 * 1024;
/// Whole head cap (L2). Kestrel 32 KiB; nginx 4 × 8 KiB.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 32 * 1024;
/// One header field cap (L2). nginx and Apache: 8 KiB.
pub const DEFAULT_MAX_HEADER_FIELD_BYTES: usize = 8 * 1024;
/// Header field count cap (L3). 100 in hyper, Apache, Envoy, Kestrel, Tomcat.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Default body cap (L4). rmcp's MCP POST limit; routes may raise it.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;
/// Chunk extension bytes per body (L11). hyper's `CHUNKED_EXTENSIONS_LIMIT`.
pub const DEFAULT_MAX_CHUNK_EXT_BYTES: usize = 16 * 1024;
/// Trailer section cap (L11). hyper's `TRAILER_LIMIT`.
pub const DEFAULT_MAX_TRAILER_BYTES: usize = 16 * 1024;

/// HTTP limits and timeouts. Every field has a safe default (see
/// [`Limits::default`]) and is a config key under `[http]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest request line in bytes; over it → 414 + close (L1). Default 8 KiB.
    pub max_request_line_bytes: usize,
    /// Longest head (request line + fields) in bytes; over it → 431 + close (L2). Default 32 KiB.
    pub max_head_bytes: usize,
    /// Longest single header field in bytes; over it → 431 + close (L2). Default 8 KiB.
    pub max_header_field_bytes: usize,
    /// Most header fields; over it → 431 + close (L3). Default 100.
    pub max_headers: usize,
    /// Largest request body for routes that do not set their own; over it → 413 + close (L4).
    /// Default 4 MiB.
    pub max_body_bytes: u64,
    /// Most chunk-extension bytes in one body; over it → 400 + close (L11). Default 16 KiB.
    pub max_chunk_ext_bytes: usize,
    /// Largest trailer section; over it → 400 + close (L11). Default 16 KiB.
    pub max_trailer_bytes: usize,
    /// The head must complete this long after its first byte; else 408 + close (L5). Default 10 s.
    #[serde(with = "duration_ms", rename = "head_timeout_ms")]
    pub head_timeout: Duration,
    /// Longest gap between body reads; else 408 + close (L6). Default 30 s.
    #[serde(with = "duration_ms", rename = "body_gap_timeout_ms")]
    pub body_gap_timeout: Duration,
    /// Slowest body rate accepted after the grace period, bytes/s (L6). Default 240.
    pub body_min_rate_bytes_per_sec: u64,
    /// Grace period before the body rate is enforced (L6). Default 5 s.
    #[serde(with = "duration_ms", rename = "body_rate_grace_ms")]
    pub body_rate_grace: Duration,
    /// An idle keep-alive connection is closed after this, silently (L7). Default 15 s.
    #[serde(with = "duration_ms", rename = "keep_alive_timeout_ms")]
    pub keep_alive_timeout: Duration,
    /// Requests served on one connection; the last carries `Connection: close` (L8). Default 1000.
    pub max_requests_per_conn: u32,
    /// Interval between SSE heartbeat comments (L13). Default 15 s.
    #[serde(with = "duration_ms", rename = "sse_heartbeat_ms")]
    pub sse_heartbeat: Duration,
    /// `retry:` value sent at the start of every SSE stream, in ms (L13). Default 3000.
    pub sse_retry_ms: u32,
    /// Events queued for one SSE stream but not yet written; a producer that
    /// exceeds it has its stream closed (slow consumer). Default 1024.
    pub sse_max_queued_events: usize,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT. Default 10 s.
    #[serde(with = "duration_ms", rename = "drain_timeout_ms")]
    pub drain_timeout: Duration,
    /// Open SSE streams, as a percentage of `server.max_connections`; a
    /// stream over it is refused with 503, so streams cannot hold every
    /// connection slot. Default 50.
    pub max_streams_percent: u8,
    /// Open SSE streams per client address (0 = no limit; loopback peers
    /// are exempt, as behind a local proxy they are everyone); over it →
    /// 503. Default 32.
    pub max_streams_per_client: usize,
    /// During a drain, a keep-alive connection idle this long is closed; a
    /// request that arrives first is answered with `Connection: close`.
    /// Default 1 s (the last request of a client polling every second).
    #[serde(with = "duration_ms", rename = "drain_idle_grace_ms")]
    pub drain_idle_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line_bytes: DEFAULT_MAX_REQUEST_LINE_BYTES,
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_header_field_bytes: DEFAULT_MAX_HEADER_FIELD_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_chunk_ext_bytes: DEFAULT_MAX_CHUNK_EXT_BYTES,
            max_trailer_bytes: DEFAULT_MAX_TRAILER_BYTES,
            head_timeout: Duration::from_secs(10),
            body_gap_timeout: Duration::from_secs(30),
            body_min_rate_bytes_per_sec: 240,
            body_rate_grace: Duration::from_secs(5),
            keep_alive_timeout: Duration::from_secs(15),
            max_requests_per_conn: 1000,
            sse_heartbeat: Duration::from_secs(15),
            sse_retry_ms: 3000,
            sse_max_queued_events: 1024,
            drain_timeout: Duration::from_secs(10),
            drain_idle_grace: Duration::from_secs(1),
            max_streams_percent: 50,
            max_streams_per_client: 32,
        }
    }
}
