//! ONNX inference: model repository, batcher, KServe v2 and models as tools (issue #4).
//!
//! Not built yet: this module is reserved for the ML layer.
//!
//! Invariant: the engine (sessions, repository, batcher) knows nothing of HTTP, MCP or JSON.
