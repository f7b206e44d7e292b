//! What Conduit serves for show and for benchmarks: the TechEmpower routes
//! (`/plaintext`, `/json`), the `[demo]` extras (`/demo/sleep`, the
//! `/demo/ticker` SSE stream) and the built-in MCP tools, resource and
//! prompt (`echo`, `add`, `sleep`, `conduit://readme`, `summarize`).
//!
//! Invariant: nothing here is needed to serve MCP or models; `app` wires it
//! in next to them.

use crate::config::DemoConfig;
use crate::http::{Cx, Method, Mode, Reply, Request, Response, Router, SseSender};
use crate::mcp::{content, Contents, Prompt, Registry, Resource, Tool, ToolError, ToolResult};
use crate::util::lock;
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const HELLO: &str = "Hello, World!";
/// `/demo/sleep` sleeps at most this long (it holds a worker thread).
const MAX_DEMO_SLEEP_MS: u64 = 10_000;

#[derive(serde::Serialize)]
struct Message<'a> {
    message: &'a str,
}

/// The TechEmpower routes, and the `[demo]` routes `cfg` switches on.
pub(crate) fn routes(router: &mut Router, cfg: &DemoConfig) {
    // TechEmpower: a fresh JSON serialization per request, Server and Date headers.
    router
        .fixed(
            Method::Get,
            "/plaintext",
            Response::with_body(
                200,
                "text/plain",
                bytes::Bytes::from_static(HELLO.as_bytes()),
            ),
        )
        .route(Method::Get, "/json", Mode::Inline, json);
    if cfg.sleep {
        // A slow request on demand, for trying out timeouts and graceful shutdown.
        router.route(Method::Get, "/demo/sleep", Mode::Pool, sleep);
    }
    if cfg.ticker {
        let ticker = Ticker::start(Duration::from_millis(cfg.ticker_interval_ms));
        router.route(
            Method::Get,
            "/demo/ticker",
            Mode::Inline,
            move |req: &mut Request, cx: &mut Cx<'_>| {
                let (stream, tx) = cx.sse();
                if req.method() != Method::Head {
                    ticker.subscribe(tx);
                }
                Reply::Sse(stream)
            },
        );
    }
}

/// `GET /json`.
fn json(_: &mut Request, _: &mut Cx<'_>) -> Reply {
    thread_local! {
        /// Per loop thread: the buffer every `/json` body is
        /// serialized into (TechEmpower allows reusing it), and
        /// the one bodies are split off. PERF: no allocation per
        /// request; the split-off space is reclaimed once the
        /// bodies sent from it are dropped. Serializing into a
        /// `Vec` is cheaper than through `BytesMut`'s writer
        /// (callgrind, benches/load/pipeline_client.py --json).
        static BUF: RefCell<(Vec<u8>, BytesMut)> =
            RefCell::new((Vec::new(), BytesMut::with_capacity(4096)));
    }
    // The head is prerendered once; TechEmpower still gets a
    // fresh serialization per request.
    static JSON: OnceLock<Response> = OnceLock::new();
    let body = BUF.with(|buf| {
        let mut buf = buf.try_borrow_mut().ok()?;
        let (text, bodies) = &mut *buf;
        text.clear();
        serde_json::to_writer(&mut *text, &Message { message: HELLO }).ok()?;
        bodies.reserve(text.len());
        bodies.extend_from_slice(text);
        Some(bodies.split().freeze())
    });
    match body {
        Some(body) => {
            let head = JSON.get_or_init(|| Response::json(200, body.clone()).prerender());
            Reply::Response(Response::json(200, body).with_head_of(head))
        }
        None => Reply::Response(Response::text(500, "serialization failed\n")),
    }
}

/// `GET /demo/sleep?ms=N`.
fn sleep(req: &mut Request, _: &mut Cx<'_>) -> Reply {
    let ms = req
        .query_param("ms")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1000)
        .min(MAX_DEMO_SLEEP_MS);
    std::thread::sleep(Duration::from_millis(ms));
    Reply::Response(Response::text(200, format!("slept {ms} ms\n")))
}

/// A demo SSE source: one producer thread fans each tick out to every subscriber.
#[derive(Debug, Clone)]
struct Ticker {
    subscribers: Arc<Mutex<Vec<SseSender>>>,
}

impl Ticker {
    fn start(interval: Duration) -> Ticker {
        let t = Ticker {
            subscribers: Arc::new(Mutex::new(Vec::new())),
        };
        let subs = Arc::downgrade(&t.subscribers);
        let spawned = std::thread::Builder::new()
            .name("conduit-ticker".into())
            .spawn(move || {
                let mut seq: u64 = 0;
                loop {
                    std::thread::sleep(interval);
                    // The server (and its router) is gone: stop.
                    let Some(subs) = subs.upgrade() else { return };
                    seq += 1;
                    let t_ns = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos());
                    let data = format!("{{\"seq\":{seq},\"t_ns\":{t_ns}}}");
                    let mut list = lock(&subs);
                    // PERF: encoded once, shared by every stream (benches/load/sse.sh).
                    let ev = crate::http::sse::Event {
                        event: None,
                        id: None,
                        data: &data,
                        retry_ms: None,
                    };
                    let Ok(bytes) = crate::http::encode_shared(&ev) else {
                        continue;
                    };
                    list.retain(|tx| tx.send_encoded(&bytes).is_ok());
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the demo ticker thread");
        }
        t
    }

    fn subscribe(&self, tx: SseSender) {
        lock(&self.subscribers).push(tx);
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoArgs {
    /// Text to send back.
    text: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddArgs {
    /// First addend.
    a: f64,
    /// Second addend.
    b: f64,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SleepArgs {
    /// How long to work, in ms (at most 60000). Reports progress every 10%.
    ms: u64,
}

/// The demo tools every Conduit serves (`echo`, `add`, `sleep`), the
/// `conduit://readme` resource and the `summarize` prompt.
pub(crate) fn tools(reg: &Registry) {
    let echo = Tool::typed(
        "echo",
        "Returns the text it was given.",
        |a: EchoArgs, _| Ok(ToolResult::text(a.text)),
    )
    .map(|t| {
        t.inline()
            .with_annotations(json!({ "readOnlyHint": true, "idempotentHint": true }))
    });
    let add = Tool::typed(
        "add",
        "Adds two numbers; the sum is also structured output.",
        |a: AddArgs, _| Ok(ToolResult::structured(json!({ "sum": a.a + a.b }))),
    )
    .and_then(|t| {
        t.inline().with_output_schema(json!({
            "type": "object",
            "properties": { "sum": { "type": "number" } },
            "required": ["sum"]
        }))
    });
    let sleep = Tool::typed(
        "sleep",
        "Works for `ms` milliseconds, reporting progress; can be cancelled.",
        |a: SleepArgs, cx| {
            let ms = a.ms.min(60_000);
            for i in 1..=10 {
                if !cx.sleep(Duration::from_millis(ms / 10)) {
                    return Err(ToolError::Cancelled);
                }
                cx.progress(f64::from(i) * 10.0, Some(100.0), Some("working"));
            }
            Ok(ToolResult::text(format!("slept {ms} ms")))
        },
    );
    for tool in [echo, add, sleep] {
        match tool {
            Ok(t) => reg.add_tool(t),
            Err(e) => tracing::error!(error = %e, "built-in tool failed to register"),
        }
    }
    reg.add_resource(Resource::new(
        "conduit://readme",
        "readme",
        "What this server is",
        "text/markdown",
        |uri| {
            Ok(vec![Contents::Text {
                uri: uri.into(),
                mime: "text/markdown".into(),
                text: "# Conduit\nAn MCP server, an ONNX inference server and a fast HTTP server in one binary.\n".into(),
            }])
        },
    ));
    reg.add_prompt(Prompt::new("summarize", "Summarize a text", &[("text", "The text to summarize", true)], |args| {
        let text = args.get("text").and_then(Value::as_str).unwrap_or_default();
        Ok(json!({
            "description": "Summarize a text",
            "messages": [{ "role": "user", "content": content::text(format!("Summarize this:\n\n{text}")) }]
        }))
    }));
}
