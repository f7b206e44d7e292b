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
    /// The request was cancelled by the client.
    #[error("request cancelled")]
    Cancelled,
    /// Something failed on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Resource not found, session era (MCP spec: -32002).
pub const RESOURCE_NOT_FOUND: i64 = -32002;
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
            _ => None,
        };
        o
    }
}
