//! The MCP layer's error enum and its one mapping to JSON-RPC codes.

use super::jsonrpc::{self, ErrorObject};
use thiserror::Error;

/// MCP protocol failures: each becomes a JSON-RPC error (tool failures are
/// not errors: they are `isError` results).
#[non_exhaustive]
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// The body was not valid JSON.
    #[error("parse error: {0}")]
    Parse(String),
    /// Not a valid JSON-RPC request (or a batch where batches are not allowed).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No such method.
    #[error("method not found: {0}")]
    MethodNotFound(String),
    /// Bad params: missing or mistyped fields, unknown tool or prompt.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// 2026-07-28: `_meta` missing or without its required fields (-32602, HTTP 400).
    #[error("invalid _meta: {0}")]
    InvalidMeta(String),
    /// A resource URI that names nothing (-32002 in the session era).
    #[error("resource not found: {0}")]
    ResourceNotFound(String),
    /// 2026-07-28: `Mcp-Method`/`Mcp-Name` headers do not match the body.
    #[error("header mismatch: {0}")]
    HeaderMismatch(String),
    /// 2026-07-28: the request needs a client capability it did not declare.
    #[error("missing required client capability: {0}")]
    MissingCapability(String),
    /// A protocol version we do not speak.
    #[error("unsupported protocol version: {0}")]
    UnsupportedVersion(String),
    /// A capacity bound was reached (SECURITY.md M17, M18): try again later.
    #[error("server busy: {0}")]
    Busy(Busy),
    /// The request was cancelled by the client.
    #[error("request cancelled")]
    Cancelled,
    /// Something failed on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A capacity bound that was reached: the client may retry later (HTTP
/// 503 with `Retry-After` on Streamable HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Busy {
    /// Every tool thread is busy and `max` calls already wait (`mcp.max_queued_calls`).
    #[error("{max} tool calls are already waiting for a thread (mcp.max_queued_calls)")]
    Queue {
        /// The configured bound.
        max: usize,
    },
    /// The session (or principal) already has `max` calls in progress
    /// (`mcp.max_calls_per_session`).
    #[error("this session already has {max} tool calls in progress (mcp.max_calls_per_session)")]
    Owner {
        /// The configured bound.
        max: usize,
    },
    /// Every session is in use (`mcp.max_sessions`).
    #[error("all {max} sessions are in use (mcp.max_sessions)")]
    Sessions {
        /// The configured bound.
        max: usize,
    },
    /// Every session of this principal is in use (`mcp.max_sessions_per_principal`).
    #[error("all {max} sessions of this principal are in use (mcp.max_sessions_per_principal)")]
    PrincipalSessions {
        /// The configured bound.
        max: usize,
    },
}

impl Busy {
    /// A machine-readable name for the bound that was hit.
    pub fn reason(&self) -> &'static str {
        match self {
            Busy::Queue { .. } => "max_queued_calls",
            Busy::Owner { .. } => "max_calls_per_session",
            Busy::Sessions { .. } => "max_sessions",
            Busy::PrincipalSessions { .. } => "max_sessions_per_principal",
        }
    }
}

/// Resource not found, session era (MCP spec: -32002).
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// The server is at a capacity bound (tool pool, sessions); retry later.
/// Implementation-defined (JSON-RPC -32000..-32099; MCP 2026-07-28 leaves
/// -32000..-32019 to implementations).
pub const SERVER_BUSY: i64 = -32005;
/// Seconds a client should wait before retrying after [`Error::Busy`].
pub const BUSY_RETRY_AFTER_SECS: u32 = 1;
/// 2026-07-28: headers and body disagree.
pub const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: a required client capability is missing.
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
/// 2026-07-28: protocol version not supported.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

impl Error {
    /// The JSON-RPC code. `stateless` selects the 2026-07-28 code for a
    /// missing resource (-32602) instead of the session era's -32002.
    pub fn json_rpc_code(&self, stateless: bool) -> i64 {
        match self {
            Error::Parse(_) => jsonrpc::PARSE_ERROR,
            Error::InvalidRequest(_) => jsonrpc::INVALID_REQUEST,
            Error::MethodNotFound(_) => jsonrpc::METHOD_NOT_FOUND,
            Error::InvalidParams(_) | Error::InvalidMeta(_) => jsonrpc::INVALID_PARAMS,
            Error::ResourceNotFound(_) if stateless => jsonrpc::INVALID_PARAMS,
            Error::ResourceNotFound(_) => RESOURCE_NOT_FOUND,
            Error::HeaderMismatch(_) => HEADER_MISMATCH,
            Error::MissingCapability(_) => MISSING_REQUIRED_CLIENT_CAPABILITY,
            Error::UnsupportedVersion(_) => UNSUPPORTED_PROTOCOL_VERSION,
            Error::Busy(_) => SERVER_BUSY,
            Error::Cancelled => jsonrpc::INTERNAL_ERROR,
            Error::Internal(_) => jsonrpc::INTERNAL_ERROR,
        }
    }

    /// The error object to send.
    pub fn to_object(&self, stateless: bool) -> ErrorObject {
        let mut o = ErrorObject::new(self.json_rpc_code(stateless), self.to_string());
        o.data = match self {
            Error::ResourceNotFound(uri) => Some(serde_json::json!({ "uri": uri })),
            // SEP-2575: the capabilities needed, as a ClientCapabilities object.
            Error::MissingCapability(c) => {
                Some(serde_json::json!({ "requiredCapabilities": { c.as_str(): {} } }))
            }
            Error::UnsupportedVersion(v) => Some(serde_json::json!({
                "supported": [super::server::STATELESS_VERSION],
                "requested": v,
            })),
            Error::Busy(b) => Some(serde_json::json!({
                "reason": b.reason(),
                "retryAfterSeconds": BUSY_RETRY_AFTER_SECS,
            })),
            Error::Parse(_)
            | Error::InvalidRequest(_)
            | Error::MethodNotFound(_)
            | Error::InvalidParams(_)
            | Error::InvalidMeta(_)
            | Error::HeaderMismatch(_)
            | Error::Cancelled
            | Error::Internal(_) => None,
        };
        o
    }
}
