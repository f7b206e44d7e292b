//! Integration tests: one crate, one binary (STYLE.md §9).

mod support;

mod auth;
mod basics;
mod http_limits;
mod loops;
mod mcp_http;
mod mcp_stdio;
mod ml_runtime;
mod ml_serve;
mod ml_text;
mod shutdown;
mod smuggling;
mod sse;
