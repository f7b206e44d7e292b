//! ONNX inference: model repository, batcher, KServe v2 and models as tools (issue #4).
//!
//! The engine: `runtime` (the ONNX Runtime library), `tensor` (dtypes,
//! checks, batching along axis 0), `model` (config, metadata, sessions),
//! `batcher` (one queue per model, one thread per session), `repository`
//! (Triton layout, lazy/eager loading, LRU under a memory budget),
//! `memory` (what a loaded model costs, per platform), `stats`.
//! The adapters: `kserve` (KServe v2 HTTP routes) and `tools` (models as MCP tools).
//!
//! Invariant: the engine (runtime, sessions, repository, batcher) knows nothing of HTTP, MCP or JSON.
//! Invariant: no `ort` call happens before the runtime loaded; `ort` panics otherwise.

pub mod batcher;
pub mod graph;
pub mod json;
pub mod kserve;
pub mod memory;
pub mod model;
pub mod repository;
pub mod runtime;
pub mod stats;
pub mod tensor;
pub mod text;
pub mod text_api;
pub mod tools;

pub use repository::{Change, Lease, Repository};
pub use runtime::{MlConfig, Runtime};
pub use tensor::{DType, Data, Tensor, TensorSpec};

use std::time::Duration;

/// The ML layer's errors.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No ONNX Runtime library at any of the places looked at.
    #[error("ONNX Runtime library not found (looked at: {looked}); run scripts/fetch-onnxruntime (it puts the library in the user cache), or set ml.ort_library / ORT_DYLIB_PATH")]
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
    /// A model name outside `[A-Za-z0-9._-]{1,64}`.
    #[error("invalid model name {0:?}: names are 1-64 characters of A-Z a-z 0-9 . _ -")]
    InvalidName(String),
    /// No such model in the repository.
    #[error("unknown model {0:?}")]
    NotFound(String),
    /// The model exists, but not this version.
    #[error("model {name:?} has no version {version:?} loaded (serving {serving:?})")]
    VersionNotFound {
        /// The model.
        name: String,
        /// The version asked for.
        version: String,
        /// The version served.
        serving: String,
    },
    /// The model could not be loaded (missing or corrupt file, unsupported types).
    #[error("model {name:?} failed to load: {why}")]
    ModelLoad {
        /// The model.
        name: String,
        /// Why.
        why: String,
    },
    /// The model is not serving now.
    #[error("{0}")]
    Unavailable(String),
    /// The request does not fit the model.
    #[error("{0}")]
    BadInput(String),
    /// The model's queue is full.
    #[error("the model's queue is full; retry shortly")]
    QueueFull,
    /// The request waited longer than the model's queue timeout.
    #[error("the request waited in the queue longer than {} ms", .0.as_millis())]
    QueueTimeout(Duration),
    /// The request may not do this (the repository API is off, a foreign
    /// Host or Origin, a wrong key).
    #[error("{0}")]
    Forbidden(String),
    /// A state-changing request whose body is not JSON (SECURITY.md I9).
    #[error("the body must be application/json")]
    NotJson,
    /// ONNX Runtime failed on an input that passed the checks.
    #[error("inference failed: {0}")]
    Inference(String),
}

impl Error {
    /// What a client is told. ONNX Runtime's own text (source paths,
    /// internals) goes to the log, never to the client (SECURITY.md I10).
    pub fn client_message(&self) -> String {
        match self {
            Error::Inference(why) => {
                tracing::warn!(error = %why, "inference failed");
                "inference failed on an input that passed the model's checks; the server log has the details".into()
            }
            // The server's file paths stay in its log (logged once, when
            // the load was tried).
            Error::LibraryMissing { .. } => "ONNX Runtime library not found; run scripts/fetch-onnxruntime, or set ml.ort_library / ORT_DYLIB_PATH (the server log lists where it looked)".into(),
            Error::LoadFailed { .. } => "ONNX Runtime could not be loaded; the server log has the details".into(),
            Error::InvalidName(_)
            | Error::NotFound(_)
            | Error::VersionNotFound { .. }
            | Error::ModelLoad { .. }
            | Error::Unavailable(_)
            | Error::BadInput(_)
            | Error::QueueFull
            | Error::QueueTimeout(_)
            | Error::Forbidden(_)
            | Error::NotJson => self.to_string(),
        }
    }
}
