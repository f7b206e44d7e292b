//! Finding and loading the ONNX Runtime shared library (ort `load-dynamic`).

use super::Error;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The ONNX Runtime version the setup step fetches.
pub const ORT_VERSION: &str = "1.31.1";

/// Where `scripts/fetch-onnxruntime` puts the library, relative to the working directory.
pub fn default_library() -> PathBuf {
    PathBuf::from(format!(
        ".cache/onnxruntime/libonnxruntime.so.{ORT_VERSION}"
    ))
}

/// ML settings (`[ml]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlConfig {
    /// Path of `libonnxruntime.so`. Default: `ORT_DYLIB_PATH`, else
    /// `.cache/onnxruntime/libonnxruntime.so.1.31.1` (fetched by `scripts/fetch-onnxruntime`).
    pub ort_library: Option<String>,
    /// The model repository directory (`models/<name>/[<version>/]model.onnx`,
    /// optional `config.toml`); empty = no models. `conduit serve --models DIR`.
    pub models: String,
    /// Load every model at startup (on a background thread) instead of on first use. Default true.
    pub eager_load: bool,
    /// Most bytes the loaded models may hold together (measured around load
    /// and warm-up); the least recently used idle model is evicted to stay
    /// under it. 0 = no limit. Default 0.
    pub memory_budget_bytes: u64,
    /// Most bytes of an inference request body (and of its tensor data). Default 64 MiB (Triton).
    pub max_input_bytes: u64,
    /// Serve `POST /v2/repository/models/{name}/load|unload` (SECURITY.md I4). Default false.
    pub repository_api: bool,
    /// If set, the repository API needs header `Conduit-Repository-Key: <key>`.
    pub repository_api_key: Option<String>,
    /// Serve every model as an MCP tool, plus `list_models`. Default true.
    pub mcp_tools: bool,
    /// Most texts in one text API request (`/v1/embeddings`, `/embed`,
    /// `/rerank`, `/predict`, `/tokenize`); more → 400 (OpenAI's shape) or 422 (TEI's).
    /// Default 2048 (OpenAI's).
    pub max_texts_per_request: usize,
    /// Most bytes in one text of a text API request; more → 413. Default 256 KiB.
    pub max_text_bytes: usize,
    /// Most tokens in one text API request, after truncation; more → 413.
    /// Default 300,000 (OpenAI's).
    pub max_tokens_per_request: usize,
    /// Most bytes of a `POST /tokenize` body (at most `max_input_bytes`):
    /// its answer lists every token, tens of bytes of JSON each, so its
    /// input is held lower than other text routes'. Default 2,000,000
    /// (TEI's `--payload-limit`).
    pub max_tokenize_bytes: u64,
}

impl Default for MlConfig {
    fn default() -> Self {
        MlConfig {
            ort_library: None,
            models: String::new(),
            eager_load: true,
            memory_budget_bytes: 0,
            max_input_bytes: 64 << 20,
            repository_api: false,
            repository_api_key: None,
            mcp_tools: true,
            max_texts_per_request: 2048,
            max_text_bytes: 256 << 10,
            max_tokens_per_request: 300_000,
            max_tokenize_bytes: 2_000_000,
        }
    }
}

/// The loaded ONNX Runtime: one per process (ONNX Runtime allows one environment).
#[derive(Debug)]
pub struct Runtime {
    path: PathBuf,
    env: ort::environment::Environment,
}

static RUNTIME: OnceLock<Result<Runtime, Error>> = OnceLock::new();

/// The candidate paths, in order: config, `ORT_DYLIB_PATH`, the default.
pub fn candidates(cfg: &MlConfig, env_path: Option<String>) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    if let Some(p) = &cfg.ort_library {
        v.push(p.into());
    }
    if let Some(p) = env_path.filter(|p| !p.is_empty()) {
        v.push(p.into());
    }
    v.push(default_library());
    v
}

/// The first candidate that is a file. Never hand ort a path that does not
/// exist: after a failed load, later ort calls fall back to a default name
/// and panic.
pub fn pick(paths: &[PathBuf]) -> Result<PathBuf, Error> {
    paths
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| Error::LibraryMissing {
            looked: paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn load(cfg: &MlConfig) -> Result<Runtime, Error> {
    let path = pick(&candidates(cfg, std::env::var("ORT_DYLIB_PATH").ok()))?;
    let failed = |why: String| Error::LoadFailed {
        path: path.display().to_string(),
        why,
    };
    let builder = ort::init_from(&path).map_err(|e| failed(e.to_string()))?;
    let env = builder
        .with_name("conduit")
        .build()
        .map_err(|e| failed(e.to_string()))?;
    Ok(Runtime { path, env })
}

impl Runtime {
    /// Loads the runtime once per process; later calls return the first outcome.
    pub fn get(cfg: &MlConfig) -> Result<&'static Runtime, Error> {
        RUNTIME
            .get_or_init(|| load(cfg))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The library that was loaded.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// ONNX Runtime's own build description.
    pub fn build_info(&self) -> &'static str {
        ort::info()
    }

    /// The process's ONNX Runtime environment (for creating sessions).
    pub fn environment(&self) -> &ort::environment::Environment {
        &self.env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_then_env_then_default() {
        let cfg = MlConfig {
            ort_library: Some("/a.so".into()),
            ..MlConfig::default()
        };
        let c = candidates(&cfg, Some("/b.so".into()));
        assert_eq!(
            c,
            vec![
                PathBuf::from("/a.so"),
                PathBuf::from("/b.so"),
                default_library()
            ]
        );
        assert_eq!(
            candidates(&MlConfig::default(), Some(String::new())),
            vec![default_library()]
        );
    }

    #[test]
    fn a_missing_library_is_a_clear_error_naming_the_fix() {
        let e = pick(&[PathBuf::from("/nonexistent/libonnxruntime.so")]).unwrap_err();
        assert!(matches!(e, Error::LibraryMissing { .. }));
        assert!(e.to_string().contains("scripts/fetch-onnxruntime"), "{e}");
    }
}
