//! rmcp-peer: the baseline for Conduit's MCP benchmark (benches/mcp).
//!
//! The official Rust MCP SDK (`rmcp`) serving one tool, `echo`
//! ({"text": string} -> one text content block with the same text, like
//! Conduit's built-in `echo`), on rmcp's Streamable HTTP server
//! (`StreamableHttpService`, a tower service) mounted at `/mcp` in axum.
//!
//!     rmcp-peer ADDR [THREADS]
//!
//! ADDR defaults to 127.0.0.1:8080, THREADS (tokio worker threads) to one per
//! core. `GET /health` answers 200 (readiness for the scripts).
//!
//! Mode: rmcp's defaults (`StreamableHttpServerConfig::default()`): stateful
//! sessions (`legacy_session_mode: true`: `initialize` issues an
//! `Mcp-Session-Id`, one session task per client) and every POST answered
//! as an SSE stream (`json_response` only applies to stateless mode).
//! `RMCP_MODE=stateless-json` switches to stateless + JSON responses
//! (`legacy_session_mode: false, json_response: true`) for comparison.
//! TCP_NODELAY is set on accepted connections (`RMCP_NODELAY=0`: not; see
//! main). SSE keep-alive pings are off (`sse_keep_alive: None`): replies here take
//! microseconds, so they would never fire anyway.

use axum::serve::ListenerExt;
use rmcp::{
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{ServerCapabilities, ServerConfig},
    schemars, tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
    },
    ServerHandler,
};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoArgs {
    /// Text to send back.
    text: String,
}

#[derive(Debug, Clone)]
struct Echo {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Echo {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    /// A `String` result becomes one `{"type":"text","text":...}` content block.
    #[tool(
        description = "Returns the text it was given.",
        annotations(read_only_hint = true, idempotent_hint = true)
    )]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let threads = args
        .get(2)
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mode = std::env::var("RMCP_MODE").unwrap_or_else(|_| "default".into());
    // axum::serve leaves Nagle on. rmcp writes an SSE reply as several
    // chunks (head + priming event, the response event, the last chunk), so
    // with Nagle the response event waits for the client's delayed ACK
    // (~40 ms on Linux) on every call. Any server that cares about latency
    // sets TCP_NODELAY (Conduit, hyper-peer do); RMCP_NODELAY=0 shows rmcp
    // as `axum::serve(listener, router)` leaves it.
    let nodelay = std::env::var("RMCP_NODELAY").map_or(true, |v| v != "0");
    let mut cfg = StreamableHttpServerConfig::default().with_sse_keep_alive(None);
    match mode.as_str() {
        "default" => {}
        "stateless-json" => {
            cfg = cfg.with_legacy_session_mode(false).with_json_response(true);
        }
        other => {
            eprintln!("rmcp-peer: unknown RMCP_MODE {other:?} (default, stateless-json)");
            std::process::exit(2);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let ct = tokio_util::sync::CancellationToken::new();
        let service: StreamableHttpService<Echo, LocalSessionManager> = StreamableHttpService::new(
            || Ok(Echo::new()),
            Default::default(),
            cfg.with_cancellation_token(ct.child_token()),
        );
        let router = axum::Router::new()
            .route("/health", axum::routing::get(|| async { "ok" }))
            .nest_service("/mcp", service);
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        eprintln!(
            "rmcp-peer (rmcp 3.9.0, mode {mode}, TCP_NODELAY {nodelay}) listening on http://{}/mcp with {threads} worker thread(s)",
            listener.local_addr().unwrap()
        );
        let listener = listener.tap_io(move |tcp| {
            if nodelay {
                let _ = tcp.set_nodelay(true);
            }
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = tokio::signal::ctrl_c().await;
                ct.cancel();
            })
            .await
            .expect("serve");
    });
}
