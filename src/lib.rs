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
pub mod http;
pub mod mcp;
pub mod ml;
pub mod net;
mod util;
