//! Finding and loading the ONNX Runtime shared library (ort `load-dynamic`).
//!
//! Where the library is looked for never depends on the working directory:
//! `conduit stdio` is started by desktop agents from a directory of their
//! choosing, and a relative default silently turned inference off there.

use super::Error;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The ONNX Runtime version the setup step fetches.
pub const ORT_VERSION: &str = "1.31.1";

/// The file name of the library this build expects (`libonnxruntime.so.1.31.1`).
pub fn library_file_name() -> String {
    format!("libonnxruntime.so.{ORT_VERSION}")
}

/// How many directories above the executable's a dev build's `target`
/// directory may be: `target/<profile>/`, `target/<profile>/deps/` (test
/// binaries), `target/<triple>/<profile>/deps/`.
const MAX_TARGET_DEPTH: usize = 4;

/// ML settings (`[ml]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlConfig {
    /// Path of `libonnxruntime.so`; when set (or `ORT_DYLIB_PATH` is), it
    /// is the only place looked. Default: `ORT_DYLIB_PATH`, else the first
    /// `libonnxruntime.so.1.31.1` next to the executable, in the checkout a
    /// dev build runs from (`<repo>/.cache/onnxruntime/` for
    /// `<repo>/target/…/conduit`), or in the user cache
    /// (`$XDG_CACHE_HOME/conduit/onnxruntime/`, else
    /// `~/.cache/conduit/onnxruntime/`), where `scripts/fetch-onnxruntime`
    /// puts it. Never relative to the working directory.
    pub ort_library: Option<String>,
    /// The model repository directory (`models/<name>/[<version>/]model.onnx`,
    /// optional `config.toml`); empty = no models. `conduit serve --models DIR`.
    pub models: String,
    /// Load every model at startup instead of on first use: `conduit
    /// serve` on a background thread, `conduit stdio` before it reads stdin
    /// (so the first `tools/list` has their tools). Default true.
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

/// Where a candidate library path comes from (named in the log and in
/// the error that lists where the search looked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `ml.ort_library` (config file, `CONDUIT_ML_ORT_LIBRARY`).
    Config,
    /// `$ORT_DYLIB_PATH`.
    Env,
    /// The running executable's directory (an install that ships the library beside the binary).
    BesideExe,
    /// `<repo>/.cache/onnxruntime/` of the checkout whose `target/`
    /// directory holds the running executable (a dev build).
    Checkout,
    /// `$XDG_CACHE_HOME/conduit/onnxruntime/`, else `~/.cache/conduit/onnxruntime/`.
    UserCache,
}

impl Source {
    /// How the source is named in logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Source::Config => "ml.ort_library",
            Source::Env => "ORT_DYLIB_PATH",
            Source::BesideExe => "next to the executable",
            Source::Checkout => "the dev build's checkout",
            Source::UserCache => "the user cache",
        }
    }
}

/// A place the library may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The file.
    pub path: PathBuf,
    /// Why it is looked at.
    pub source: Source,
}

/// What the search depends on besides the config: read from the process
/// once ([`Places::from_process`]); tests build their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Places {
    /// `$ORT_DYLIB_PATH` (empty = unset).
    pub ort_dylib_path: Option<PathBuf>,
    /// The running executable, symlinks resolved (`std::env::current_exe`).
    pub exe: Option<PathBuf>,
    /// `$XDG_CACHE_HOME` (ignored unless absolute, as the XDG spec says).
    pub xdg_cache_home: Option<PathBuf>,
    /// `$HOME` (ignored unless absolute).
    pub home: Option<PathBuf>,
}

impl Places {
    /// The process's environment and executable.
    pub fn from_process() -> Places {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Places {
            ort_dylib_path: var("ORT_DYLIB_PATH"),
            exe: std::env::current_exe().ok(),
            xdg_cache_home: var("XDG_CACHE_HOME"),
            home: var("HOME"),
        }
    }

    /// Conduit's user cache directory: `$XDG_CACHE_HOME/conduit`, else
    /// `$HOME/.cache/conduit` (None without either).
    pub fn user_cache_dir(&self) -> Option<PathBuf> {
        let xdg = self.xdg_cache_home.as_ref().filter(|p| p.is_absolute());
        let base = match xdg {
            Some(x) => x.clone(),
            None => self
                .home
                .as_ref()
                .filter(|p| p.is_absolute())?
                .join(".cache"),
        };
        Some(base.join("conduit"))
    }

    /// `<repo>` when the executable lies under `<repo>/target/` (at most
    /// [`MAX_TARGET_DEPTH`] directories deep): a build run from its checkout.
    fn checkout(&self) -> Option<&Path> {
        self.exe
            .as_deref()?
            .parent()?
            .ancestors()
            .take(MAX_TARGET_DEPTH)
            .find(|d| d.file_name().is_some_and(|n| n == "target"))?
            .parent()
    }
}

/// The places looked at, in order. An explicit choice (`ml.ort_library`,
/// else `ORT_DYLIB_PATH`) is the only one: a library named on purpose and
/// missing is an error to report, not a reason to load another. Otherwise:
/// next to the executable, the dev build's checkout, the user cache. The
/// working directory is never one of them.
pub fn candidates(cfg: &MlConfig, places: &Places) -> Vec<Candidate> {
    let at = |path: PathBuf, source| Candidate { path, source };
    if let Some(p) = cfg.ort_library.as_deref().filter(|p| !p.is_empty()) {
        return vec![at(p.into(), Source::Config)];
    }
    if let Some(p) = &places.ort_dylib_path {
        return vec![at(p.clone(), Source::Env)];
    }
    let file = library_file_name();
    let mut v = Vec::new();
    if let Some(dir) = places.exe.as_deref().and_then(Path::parent) {
        v.push(at(dir.join(&file), Source::BesideExe));
    }
    // The checkout's copy before the user cache: a dev build uses what its
    // own `scripts/fetch-onnxruntime` fetched.
    if let Some(repo) = places.checkout() {
        v.push(at(
            repo.join(".cache/onnxruntime").join(&file),
            Source::Checkout,
        ));
    }
    if let Some(dir) = places.user_cache_dir() {
        v.push(at(dir.join("onnxruntime").join(&file), Source::UserCache));
    }
    v
}

/// The first candidate that is a file. Never hand ort a path that does not
/// exist: after a failed load, later ort calls fall back to a default name
/// and panic.
pub fn pick(candidates: &[Candidate]) -> Result<Candidate, Error> {
    candidates
        .iter()
        .find(|c| c.path.is_file())
        .cloned()
        .ok_or_else(|| Error::LibraryMissing {
            looked: candidates
                .iter()
                .map(|c| format!("{} ({})", c.path.display(), c.source.name()))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The loaded ONNX Runtime: one per process (ONNX Runtime allows one environment).
#[derive(Debug)]
pub struct Runtime {
    path: PathBuf,
    source: Source,
    env: ort::environment::Environment,
}

static RUNTIME: OnceLock<Result<Runtime, Error>> = OnceLock::new();

fn load(cfg: &MlConfig) -> Result<Runtime, Error> {
    let Candidate { path, source } = pick(&candidates(cfg, &Places::from_process()))?;
    let failed = |why: String| Error::LoadFailed {
        path: path.display().to_string(),
        why,
    };
    let builder = ort::init_from(&path).map_err(|e| failed(e.to_string()))?;
    let env = builder
        .with_name("conduit")
        .build()
        .map_err(|e| failed(e.to_string()))?;
    tracing::info!(library = %path.display(), from = source.name(), "ONNX Runtime loaded");
    Ok(Runtime { path, source, env })
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

    /// Where the library was found.
    pub fn source(&self) -> Source {
        self.source
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

    fn places(exe: &str) -> Places {
        Places {
            ort_dylib_path: None,
            exe: Some(exe.into()),
            xdg_cache_home: None,
            home: Some("/home/u".into()),
        }
    }

    fn paths(c: &[Candidate]) -> Vec<(String, Source)> {
        c.iter()
            .map(|c| (c.path.display().to_string(), c.source))
            .collect()
    }

    #[test]
    fn an_explicit_library_is_the_only_place_looked() {
        let cfg = MlConfig {
            ort_library: Some("/a.so".into()),
            ..MlConfig::default()
        };
        let mut p = places("/opt/conduit/bin/conduit");
        p.ort_dylib_path = Some("/b.so".into());
        assert_eq!(
            paths(&candidates(&cfg, &p)),
            [("/a.so".into(), Source::Config)]
        );
        assert_eq!(
            paths(&candidates(&MlConfig::default(), &p)),
            [("/b.so".into(), Source::Env)]
        );
        // An empty ml.ort_library (CONDUIT_ML_ORT_LIBRARY="") is unset.
        let empty = MlConfig {
            ort_library: Some(String::new()),
            ..MlConfig::default()
        };
        assert_eq!(candidates(&empty, &p)[0].source, Source::Env);
    }

    #[test]
    fn the_search_is_beside_the_exe_then_the_checkout_then_the_user_cache() {
        let lib = "libonnxruntime.so.1.31.1";
        let cfg = MlConfig::default();
        let installed = places("/opt/conduit/bin/conduit");
        assert_eq!(
            paths(&candidates(&cfg, &installed)),
            [
                (format!("/opt/conduit/bin/{lib}"), Source::BesideExe),
                (
                    format!("/home/u/.cache/conduit/onnxruntime/{lib}"),
                    Source::UserCache
                ),
            ]
        );
        for exe in [
            "/src/conduit/target/debug/conduit",
            "/src/conduit/target/release/deps/it-0123abcd",
            "/src/conduit/target/x86_64-unknown-linux-gnu/debug/deps/it-0123abcd",
        ] {
            let c = candidates(&cfg, &places(exe));
            assert_eq!(c.len(), 3, "{exe}: {c:?}");
            assert_eq!(
                (c[1].path.display().to_string(), c[1].source),
                (
                    format!("/src/conduit/.cache/onnxruntime/{lib}"),
                    Source::Checkout
                ),
                "{exe}"
            );
        }
        // A `target` directory too far above the executable is not a build's.
        let far = candidates(&cfg, &places("/target/a/b/c/d/conduit"));
        assert!(far.iter().all(|c| c.source != Source::Checkout), "{far:?}");
    }

    #[test]
    fn the_user_cache_follows_xdg_and_ignores_relative_paths() {
        let mut p = places("/usr/bin/conduit");
        p.xdg_cache_home = Some("/xdg".into());
        assert_eq!(p.user_cache_dir(), Some(PathBuf::from("/xdg/conduit")));
        p.xdg_cache_home = Some("relative".into());
        assert_eq!(
            p.user_cache_dir(),
            Some(PathBuf::from("/home/u/.cache/conduit"))
        );
        p.home = Some("also-relative".into());
        assert_eq!(p.user_cache_dir(), None);
        p.exe = None;
        assert!(candidates(&MlConfig::default(), &p).is_empty());
    }

    #[test]
    fn a_missing_library_is_a_clear_error_naming_every_place_and_the_fix() {
        let c = candidates(
            &MlConfig::default(),
            &places("/nonexistent/target/debug/conduit"),
        );
        let e = pick(&c).unwrap_err();
        assert!(matches!(e, Error::LibraryMissing { .. }));
        let text = e.to_string();
        assert!(text.contains("scripts/fetch-onnxruntime"), "{text}");
        for c in &c {
            assert!(text.contains(&c.path.display().to_string()), "{text}");
            assert!(text.contains(c.source.name()), "{text}");
        }
    }
}
