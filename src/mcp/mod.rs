//! MCP: JSON-RPC 2.0, sessions, methods, and three transports.
//!
//! [`Server`] is transport-agnostic: it takes parsed JSON-RPC messages and
//! answers through what the transport hands it. Both protocol eras share one
//! endpoint: `initialize` opens a session (2024-11-05 … 2025-11-25); a
//! request carrying `_meta` `io.modelcontextprotocol/protocolVersion` is
//! served statelessly (2026-07-28). Transports: Streamable HTTP and the
//! legacy HTTP+SSE transport (`transport::routes`), and stdio
//! (`transport::stdio::run`).
//!
//! Invariant: nothing in this module knows tensors or models; models reach it as ordinary tools.
//! Invariant: tool failures are `isError` results; only protocol failures are JSON-RPC errors.

mod context;
mod error;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod jsonrpc;
mod pool;
mod registry;
mod server;
mod session;
mod state;
pub mod transport;

pub use context::{Outbox, ToolCtx};
pub use error::{Busy, Error};
pub use registry::{
    content, Contents, ListKind, Prompt, Registry, Resource, Snapshot, Tool, ToolError, ToolResult,
};
pub use server::{
    has_stateless_meta, stateless_meta, Era, Outcome, Server, Stateless, LATEST_SESSION_VERSION,
    SESSION_VERSIONS, STATELESS_VERSION,
};
pub use session::{Session, SessionId, SessionStore};
pub use state::StateKey;

use crate::util::duration_ms;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// MCP settings (`[mcp]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// Serve MCP at `/mcp` (and `/mcp/sse`). Default true.
    pub enabled: bool,
    /// `serverInfo.name`. Default `conduit`.
    pub server_name: String,
    /// `instructions` sent to clients, if any.
    pub instructions: Option<String>,
    /// Most sessions at once; at the cap the least recently used idle
    /// session (no open stream, no running call) is evicted to make room,
    /// and `initialize` is refused (-32005, HTTP 503 + `Retry-After`) only
    /// if every session is busy (M18). Default 1000.
    pub max_sessions: usize,
    /// Most sessions one authenticated principal may hold (M6); at the cap
    /// its own least recently used idle session makes room. Default 100.
    pub max_sessions_per_principal: usize,
    /// A session unused this long (and with no open stream or running call) expires. Default 30 min.
    #[serde(with = "duration_ms", rename = "session_idle_timeout_ms")]
    pub session_idle_timeout: Duration,
    /// A session whose client makes no request (and opens no stream) after
    /// `initialize` expires this soon (M18). Default 60 s.
    #[serde(with = "duration_ms", rename = "unused_session_timeout_ms")]
    pub unused_session_timeout: Duration,
    /// Threads that run tool calls (tools may block). Default 32.
    pub tool_threads: usize,
    /// Most tool calls waiting for a thread when all are busy; one more is
    /// refused at once with -32005 (HTTP 503 + `Retry-After`) (M17). Default 256.
    pub max_queued_calls: usize,
    /// Most tool calls one session (or one authenticated principal's
    /// stateless requests) may have in progress, running or waiting; one
    /// more is refused at once with -32005 (HTTP 503 + `Retry-After`) (M17).
    /// stdio's single client is not limited.
    /// 0 = a quarter of `tool_threads` (at least 1). Default 0 (8 with 32 threads).
    pub max_calls_per_session: usize,
    /// Largest MCP POST body (L4). Default 4 MiB.
    pub max_body_bytes: u64,
    /// Allowed `Host` names (any port) — DNS-rebinding protection (M2).
    /// Default `localhost`, `127.0.0.1`, `[::1]`.
    pub allowed_hosts: Vec<String>,
    /// Allowed `Origin` hosts (any scheme and port); a request without
    /// `Origin` is allowed (M1). Default `localhost`, `127.0.0.1`, `[::1]`.
    pub allowed_origins: Vec<String>,
    /// Most open legacy HTTP+SSE streams (M16). Default 100.
    pub max_legacy_streams: usize,
    /// Events kept per SSE stream for `Last-Event-ID` resumption. Default 256.
    pub replay_events: usize,
    /// Extra tool sets: `conformance` adds the conformance suite's fixtures. Default none.
    pub fixtures: Option<String>,
    /// Secret for signing stateless `requestState` (share it across replicas). Default: random per process.
    pub state_secret: Option<String>,
    /// How long a stateless `requestState` stays valid; a retry with an
    /// older one gets -32602, as a tampered one does. Default 10 min.
    #[serde(with = "duration_ms", rename = "request_state_ttl_ms")]
    pub request_state_ttl: Duration,
}

impl McpConfig {
    /// `max_calls_per_session`, with 0 resolved to a quarter of `tool_threads` (at least 1).
    pub fn calls_per_session(&self) -> usize {
        match self.max_calls_per_session {
            0 => (self.tool_threads / 4).max(1),
            n => n,
        }
    }
}

impl Default for McpConfig {
    fn default() -> Self {
        let local = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "[::1]".to_string(),
        ];
        McpConfig {
            enabled: true,
            server_name: "conduit".into(),
            instructions: None,
            max_sessions: 1000,
            max_sessions_per_principal: 100,
            session_idle_timeout: Duration::from_secs(30 * 60),
            unused_session_timeout: Duration::from_secs(60),
            tool_threads: 32,
            max_queued_calls: 256,
            max_calls_per_session: 0,
            max_body_bytes: 4 * 1024 * 1024,
            allowed_hosts: local.clone(),
            allowed_origins: local,
            max_legacy_streams: 100,
            replay_events: 256,
            fixtures: None,
            state_secret: None,
            request_state_ttl: state::DEFAULT_STATE_TTL,
        }
    }
}
