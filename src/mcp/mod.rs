//! MCP (in progress).
