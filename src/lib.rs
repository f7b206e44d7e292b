//! Conduit: an MCP server, an ONNX inference server and a fast HTTP/1.1 +
//! SSE server in one binary. See `ARCHITECTURE.md` for the map.

#![deny(
    missing_debug_implementations,
    rust_2018_idioms,
    unsafe_op_in_unsafe_fn
)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod auth;
pub mod config;
mod demo;
pub mod http;
pub mod mcp;
pub mod ml;
pub mod net;
mod util;

/// Internals the fuzz targets in `fuzz/` drive directly, in one place.
/// Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::mcp::transport::parse_event_id;
    pub use crate::mcp::transport::streamable::{
        check_param_headers, check_stateless_headers, decode_param,
    };
    pub use crate::ml::kserve::{parse_infer, Parsed};
}
