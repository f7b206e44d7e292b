//! The `conduit` command.

use anyhow::Context;
use clap::{Parser, Subcommand};
use conduit::config::{self, LogFormat};
use std::path::PathBuf;

/// Exit status when the drain deadline cut off requests in progress (each
/// is logged); a clean drain exits 0, a second signal 130.
const EXIT_CUT_OFF: i32 = 3;

/// Conduit: an MCP server, an ONNX inference server and a fast HTTP/1.1 + SSE
/// server in one binary.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP (built-in routes: /plaintext, /json, /health/live,
    /// /health/ready, /metrics, /demo/ticker).
    ///
    /// Settings come from defaults, then --config FILE, then CONDUIT_<SECTION>_<KEY>
    /// environment variables (e.g. CONDUIT_HTTP_MAX_BODY_BYTES=1048576), then
    /// these flags. See conduit.example.toml for every key.
    Serve(ServeArgs),
    /// Serve MCP over stdio: one JSON-RPC message per line on stdin/stdout,
    /// logs on stderr; exits when stdin closes.
    Stdio(ServeArgs),
    /// Print the effective configuration (after file, env and flags) as TOML.
    Config(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML config file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// I/O threads (event loops); 0 = one per core [default: 0].
    #[arg(long, value_name = "N")]
    io_threads: Option<usize>,
    /// Worker threads for handlers too costly for the loops; 0 = one per core [default: 0].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Most open connections; further ones wait in the backlog [default: 1024].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Log format [default: text].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Model repository directory (models/<name>/[<version>/]model.onnx) [default: none].
    #[arg(long, value_name = "DIR")]
    models: Option<String>,
    /// Extra MCP tool set: `conformance` serves the MCP conformance suite's
    /// fixtures (in a build with the `fixtures` cargo feature only).
    #[arg(long, value_name = "SET")]
    fixtures: Option<String>,
}

impl ServeArgs {
    fn load(&self) -> anyhow::Result<config::Config> {
        let mut o: Vec<(&str, toml::Value)> = Vec::new();
        if let Some(v) = &self.listen {
            o.push(("server.listen", toml::Value::String(v.clone())));
        }
        if let Some(v) = self.io_threads {
            o.push(("server.io_threads", toml::Value::Integer(v as i64)));
        }
        if let Some(v) = self.workers {
            o.push(("workers.threads", toml::Value::Integer(v as i64)));
        }
        if let Some(v) = self.max_connections {
            o.push(("server.max_connections", toml::Value::Integer(v as i64)));
        }
        if let Some(v) = &self.models {
            o.push(("ml.models", toml::Value::String(v.clone())));
        }
        if let Some(v) = &self.fixtures {
            o.push(("mcp.fixtures", toml::Value::String(v.clone())));
        }
        if let Some(v) = self.log_format {
            let s = match v {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            };
            o.push(("log.format", toml::Value::String(s.into())));
        }
        Ok(config::load(self.config.as_deref(), std::env::vars(), &o)?)
    }
}

fn init_logging(cfg: &config::LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.level));
    // A log write that fails (a supervisor's pipe whose reader is gone) is
    // dropped: by default tracing-subscriber reports it with `eprintln!`,
    // which panics on the same closed pipe and kills the logging thread.
    // Colours only for a terminal: an agent that launched `conduit stdio`
    // shows its stderr as plain text.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    match cfg.format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let cfg = args.load()?;
    init_logging(&cfg.log);
    // Inference needs the ONNX Runtime library; HTTP and MCP do not. Without
    // a model repository it is loaded only if a request needs it.
    if cfg.ml.models.is_empty() && !cfg.ml.repository_api {
        tracing::info!("no model repository configured (--models); ONNX Runtime not loaded");
    } else if let Err(e) = conduit::ml::Runtime::get(&cfg.ml) {
        // Runtime::get logs where it loaded the library from.
        tracing::warn!("inference is off: {e}");
    }
    // Handlers go in before the server listens: a SIGTERM that arrived while
    // they were not installed yet would kill the process outright, dropping
    // in-flight requests. Signals received meanwhile wait in `signals`.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("installing signal handlers")?;
    let running = conduit::app::start(&cfg).context("starting the server")?;
    let stop = running.shutdown_handle();
    std::thread::Builder::new()
        .name("conduit-signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                seen += 1;
                if seen == 1 {
                    // Shutdown first: nothing, a log write included, may hold it up.
                    stop();
                    tracing::info!(signal = sig, "shutting down: draining in-flight requests");
                } else {
                    tracing::warn!(signal = sig, "second signal: exiting now");
                    std::process::exit(130);
                }
            }
        })?;
    let cut_off = running.join();
    if cut_off > 0 {
        tracing::error!(
            cut_off,
            "shutdown complete, but the drain deadline cut off requests in progress"
        );
        std::process::exit(EXIT_CUT_OFF);
    }
    tracing::info!("shutdown complete");
    Ok(())
}

/// Why `conduit stdio` serves no model tools: an agent shows the server's
/// stderr, and its text is the line that explains a missing tool.
#[derive(Debug)]
enum InferenceOff {
    /// No model repository was asked for: not a fault.
    NoRepository,
    /// No ONNX Runtime (the error lists every place looked).
    Runtime(conduit::ml::Error),
    /// The repository directory holds no models.
    NoModels {
        /// The directory.
        dir: String,
    },
    /// `ml.eager_load` is off, and over stdio nothing loads a model on demand.
    NotEager,
}

impl InferenceOff {
    /// Whether an operator should hear of it as a warning: models were
    /// asked for and are not served.
    fn is_fault(&self) -> bool {
        match self {
            InferenceOff::NoRepository => false,
            InferenceOff::Runtime(_) | InferenceOff::NoModels { .. } | InferenceOff::NotEager => {
                true
            }
        }
    }
}

impl std::fmt::Display for InferenceOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InferenceOff::NoRepository => f.write_str(
                "no model repository configured (conduit stdio --models DIR, or [ml] models)",
            ),
            InferenceOff::Runtime(e) => write!(f, "{e}"),
            InferenceOff::NoModels { dir } => write!(
                f,
                "no models in {dir} (expected <name>/model.onnx or <name>/<version>/model.onnx)"
            ),
            InferenceOff::NotEager => f.write_str("ml.eager_load is false, and over stdio nothing loads a model on demand (a model's tools appear once it is loaded)"),
        }
    }
}

/// Why `conduit stdio` serves no model tools, if it serves none.
fn inference_off(cfg: &config::Config, models: &conduit::ml::Repository) -> Option<InferenceOff> {
    if cfg.ml.models.is_empty() {
        return Some(InferenceOff::NoRepository);
    }
    if let Err(e) = models.runtime() {
        return Some(InferenceOff::Runtime(e));
    }
    if models.names().is_empty() {
        return Some(InferenceOff::NoModels {
            dir: cfg.ml.models.clone(),
        });
    }
    if !cfg.ml.eager_load {
        return Some(InferenceOff::NotEager);
    }
    None
}

fn stdio(args: &ServeArgs) -> anyhow::Result<()> {
    let cfg = args.load()?;
    init_logging(&cfg.log);
    // Models load before stdin is read (see app::stdio_server).
    let (server, models) = conduit::app::stdio_server(&cfg).context("starting the MCP server")?;
    match inference_off(&cfg, &models) {
        Some(why) if why.is_fault() => tracing::warn!("inference is off: {why}"),
        Some(why) => tracing::info!("inference is off: {why}"),
        None => {}
    }
    let stdin = std::io::stdin().lock();
    let max_line = usize::try_from(cfg.mcp.max_body_bytes).unwrap_or(usize::MAX);
    conduit::mcp::transport::stdio::run(
        server,
        stdin,
        std::io::stdout(),
        max_line,
        cfg.http.drain_timeout,
    )
    .context("stdio transport")?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve(args) => serve(args),
        Command::Stdio(args) => stdio(args),
        Command::Config(args) => {
            let cfg = args.load()?;
            print!("{}", toml::to_string_pretty(&cfg)?);
            Ok(())
        }
    }
}
