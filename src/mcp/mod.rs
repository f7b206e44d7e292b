//! MCP: JSON-RPC 2.0, sessions, methods and transports (issue #3).
//!
//! Not built yet: this module is reserved for the MCP layer, which sits on
//! `http` and knows nothing of models.
//!
//! Invariant: nothing in this module knows tensors or models.
