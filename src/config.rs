//! One validated [`Config`] from a TOML file, `CONDUIT_*` environment
//! variables and command-line flags (in rising precedence).

use crate::{http, net};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Log output settings (`[log]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (human) or `json` (one object per line). Default `text`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `conduit=debug`; `RUST_LOG` wins if set. Default `info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON objects, one per line.
    Json,
}

/// The worker pool (`[workers]`) that runs handlers too costly for the I/O loops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// Worker threads; 0 = one per core. Default 0.
    pub threads: usize,
}

/// Demo routes (`[demo]`): the TechEmpower routes are always on; these are extras.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Serve `GET /demo/ticker`, an SSE stream of `{"seq":N,"t_ns":T}` events. Default true.
    pub ticker: bool,
    /// Interval between ticker events, in ms. Default 1000.
    pub ticker_interval_ms: u64,
    /// Serve `GET /demo/sleep?ms=N`, which answers after N ms (at most 10 s)
    /// on the worker pool. Default true.
    pub sleep: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            ticker: true,
            ticker_interval_ms: 1000,
            sleep: true,
        }
    }
}

/// The whole configuration. Every field has a working default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Sockets, threads, connection caps (`[server]`).
    pub server: net::Config,
    /// HTTP limits and timeouts (`[http]`).
    pub http: http::Limits,
    /// Worker pool (`[workers]`).
    pub workers: WorkersConfig,
    /// Logging (`[log]`).
    pub log: LogConfig,
    /// Demo routes (`[demo]`).
    pub demo: DemoConfig,
    /// MCP server (`[mcp]`).
    pub mcp: crate::mcp::McpConfig,
    /// Bearer-token authentication (`[auth]`).
    pub auth: crate::auth::AuthConfig,
    /// ONNX inference (`[ml]`).
    pub ml: crate::ml::MlConfig,
}

/// Why a configuration was refused.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML (after env and flag overrides) does not fit the schema.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] toml::de::Error),
    /// An environment variable does not name a config key.
    #[error("{var}: not a config key (expected CONDUIT_<SECTION>_<KEY>, e.g. CONDUIT_HTTP_MAX_HEAD_BYTES)")]
    BadEnv {
        /// The variable.
        var: String,
    },
    /// Values that parse but cannot work together.
    #[error("invalid configuration: {0}")]
    Inconsistent(String),
}

const SECTIONS: [&str; 8] = [
    "server", "http", "workers", "log", "demo", "mcp", "auth", "ml",
];

/// Reads a TOML value written on a command line or in an env var: numbers
/// and booleans as such, anything else as a string.
pub fn parse_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Builds the config: defaults, then `file`, then `CONDUIT_*` variables
/// from `env`, then `overrides` (`("section.key", value)`, from flags).
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[(&str, toml::Value)],
) -> Result<Config, Error> {
    let text = match file {
        Some(p) => Some(std::fs::read_to_string(p).map_err(|source| Error::Read {
            path: p.display().to_string(),
            source,
        })?),
        None => None,
    };
    load_str(text.as_deref(), env, overrides)
}

/// [`load`] with the config file's text already read (`None`: no file).
pub fn load_str(
    text: Option<&str>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[(&str, toml::Value)],
) -> Result<Config, Error> {
    let mut table = match text {
        Some(text) => toml::from_str::<toml::Table>(text)?,
        None => toml::Table::new(),
    };
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix("CONDUIT_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        // Only CONDUIT_<SECTION>_<KEY> with a known section is configuration;
        // other CONDUIT_* variables (CONDUIT_BIN in a script, say) are not ours.
        let Some((section, key)) = rest.split_once('_') else {
            continue;
        };
        if !SECTIONS.contains(&section) {
            continue;
        }
        if key.is_empty() {
            return Err(Error::BadEnv { var });
        }
        set(&mut table, section, key, parse_value(&raw));
    }
    for (path, v) in overrides {
        if let Some((section, key)) = path.split_once('.') {
            set(&mut table, section, key, v.clone());
        }
    }
    let cfg: Config = toml::Value::Table(table).try_into()?;
    cfg.validate()?;
    Ok(cfg)
}

fn set(table: &mut toml::Table, section: &str, key: &str, v: toml::Value) {
    let entry = table
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(t) = entry {
        t.insert(key.to_string(), v);
    }
}

impl Config {
    /// Checks values that each parse but together cannot work.
    pub fn validate(&self) -> Result<(), Error> {
        let h = &self.http;
        let bad = |m: &str| Err(Error::Inconsistent(m.to_string()));
        if h.max_request_line_bytes == 0 || h.max_head_bytes < h.max_request_line_bytes {
            return bad(
                "http.max_head_bytes must be at least http.max_request_line_bytes (and both > 0)",
            );
        }
        if h.max_headers == 0 || h.max_headers > 512 {
            return bad("http.max_headers must be between 1 and 512");
        }
        if h.max_requests_per_conn == 0 {
            return bad("http.max_requests_per_conn must be at least 1");
        }
        if self.server.max_connections == 0 {
            return bad("server.max_connections must be at least 1");
        }
        if self.server.io_threads > 1024 || self.workers.threads > 1024 {
            return bad("server.io_threads and workers.threads must be at most 1024");
        }
        if self.server.buffer_bytes < 1024 {
            return bad("server.buffer_bytes must be at least 1024");
        }
        if let Some(f) = &self.mcp.fixtures {
            if f != "conformance" {
                return bad("mcp.fixtures must be \"conformance\" (or absent)");
            }
        }
        if self.mcp.max_sessions == 0 || self.mcp.tool_threads == 0 {
            return bad("mcp.max_sessions and mcp.tool_threads must be at least 1");
        }
        if self.mcp.request_state_ttl.is_zero() || self.mcp.unused_session_timeout.is_zero() {
            return bad(
                "mcp.request_state_ttl_ms and mcp.unused_session_timeout_ms must be at least 1",
            );
        }
        if self.demo.ticker_interval_ms == 0 {
            return bad("demo.ticker_interval_ms must be at least 1");
        }
        // SECURITY.md I4, I9: load/unload reachable from other machines
        // need a credential.
        let open_repo =
            self.ml.repository_api && self.ml.repository_api_key.is_none() && !self.auth.enabled;
        if open_repo && !self.server.listen.ip().is_loopback() {
            return bad(
                "ml.repository_api on a non-loopback address needs ml.repository_api_key (or [auth] enabled)",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn an_open_repository_api_off_loopback_is_a_configuration_error() {
        // See: #13 (8).
        let open = [("ml.repository_api", parse_value("true"))];
        let wide = [
            ("ml.repository_api", parse_value("true")),
            ("server.listen", parse_value("0.0.0.0:8080")),
        ];
        assert!(load(None, env(&[]), &open).is_ok(), "loopback is fine");
        assert!(matches!(
            load(None, env(&[]), &wide),
            Err(Error::Inconsistent(_))
        ));
        let keyed = env(&[("CONDUIT_ML_REPOSITORY_API_KEY", "s3cret")]);
        assert!(load(None, keyed, &wide).is_ok());
    }

    #[test]
    fn defaults_are_valid_and_loopback() {
        let c = load(None, env(&[]), &[]).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.http.max_headers, 100);
    }

    #[test]
    fn config_text_loads_as_its_file_would() {
        let c = load_str(Some("[http]\nmax_headers = 50\n"), env(&[]), &[]).unwrap();
        assert_eq!(c.http.max_headers, 50);
        assert!(matches!(
            load_str(Some("[http]\nnope = 1\n"), env(&[]), &[]),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let dir = std::env::temp_dir().join(format!("conduit-cfg-{}", std::process::id()));
        std::fs::write(
            &dir,
            "[http]\nmax_headers = 50\nkeep_alive_timeout_ms = 1000\n",
        )
        .unwrap();
        let c = load(
            Some(&dir),
            env(&[
                ("CONDUIT_HTTP_MAX_HEADERS", "60"),
                ("CONDUIT_SERVER_LISTEN", "127.0.0.1:9"),
            ]),
            &[("server.listen", parse_value("127.0.0.1:10"))],
        )
        .unwrap();
        std::fs::remove_file(&dir).ok();
        assert_eq!(c.http.max_headers, 60);
        assert_eq!(c.http.keep_alive_timeout, std::time::Duration::from_secs(1));
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:10");
    }

    #[test]
    fn unknown_keys_and_env_are_refused() {
        // Not a known section: not ours, ignored (scripts use CONDUIT_BIN and the like).
        assert!(load(
            None,
            env(&[("CONDUIT_NOPE_X", "1"), ("CONDUIT_BIN", "x")]),
            &[]
        )
        .is_ok());
        assert!(matches!(
            load(None, env(&[("CONDUIT_HTTP_", "1")]), &[]),
            Err(Error::BadEnv { .. })
        ));
        assert!(matches!(
            load(None, env(&[("CONDUIT_HTTP_NOPE", "1")]), &[]),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            load(None, env(&[("CONDUIT_HTTP_MAX_HEADERS", "0")]), &[]),
            Err(Error::Inconsistent(_))
        ));
        assert!(matches!(
            load(None, env(&[("CONDUIT_HTTP_MAX_HEADERS", "x")]), &[]),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn example_config_parses_to_the_defaults() {
        let text = include_str!("../conduit.example.toml");
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(c, Config::default());
    }
}
