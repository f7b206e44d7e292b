//! ONNX inference: model repository, batcher, KServe v2 and models as tools (issue #4).
//!
//! Built so far: loading the ONNX Runtime library (`runtime`). The model
//! repository, the batcher and the adapters come next.
//!
//! Invariant: the engine (runtime, sessions, repository, batcher) knows nothing of HTTP, MCP or JSON.
//! Invariant: no `ort` call happens before the runtime loaded; `ort` panics otherwise.

pub mod runtime;

pub use runtime::{MlConfig, Runtime};

/// The ML layer's errors.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No ONNX Runtime library at any of the places looked at.
    #[error("ONNX Runtime library not found (looked at: {looked}); run scripts/fetch-onnxruntime, or set ml.ort_library / ORT_DYLIB_PATH")]
    LibraryMissing {
        /// Where we looked.
        looked: String,
    },
    /// The library exists but could not be loaded or initialised.
    #[error("cannot load ONNX Runtime from {path}: {why}")]
    LoadFailed {
        /// The library.
        path: String,
        /// What ONNX Runtime said.
        why: String,
    },
}
