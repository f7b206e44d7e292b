//! Registering your own MCP tool, resource and prompt in Rust.
//!
//! Run: `cargo run --example custom_tool`, then e.g.
//! `curl -s localhost:8081/mcp -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
//!   -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' -H 'mcp-name: word_count' \
//!   -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"word_count","arguments":{"text":"a b c"},
//!        "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'`

use conduit::config::Config;
use conduit::mcp::{Contents, Prompt, Resource, Tool, ToolError, ToolResult};
use serde::Deserialize;
use serde_json::json;

/// The tool's arguments: the input schema is derived from this type.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CountArgs {
    /// The text whose words are counted.
    text: String,
    /// Report progress for every word (slow on purpose, to show progress).
    #[serde(default)]
    slow: bool,
}

fn main() -> anyhow::Result<()> {
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:8081".parse()?;
    let running = conduit::app::start(&cfg)?;
    let mcp = running.mcp().expect("MCP is enabled by default").clone();

    let tool = Tool::typed(
        "word_count",
        "Counts the words of a text.",
        |a: CountArgs, cx| {
            let words: Vec<&str> = a.text.split_whitespace().collect();
            if a.slow {
                for (i, _) in words.iter().enumerate() {
                    // Runs on the tool pool: blocking is fine, cancellation is noticed.
                    if !cx.sleep(std::time::Duration::from_millis(100)) {
                        return Err(ToolError::Cancelled);
                    }
                    cx.progress((i + 1) as f64, Some(words.len() as f64), None);
                }
            }
            Ok(ToolResult::structured(json!({ "words": words.len() })))
        },
    )?
    .with_output_schema(json!({
        "type": "object",
        "properties": { "words": { "type": "integer" } },
        "required": ["words"]
    }))?;
    // Clients connected already hear of it: every registry change sends
    // notifications/tools/list_changed (resources, prompts likewise).
    mcp.registry.add_tool(tool);

    mcp.registry.add_resource(Resource::new(
        "example://motd",
        "motd",
        "Message of the day",
        "text/plain",
        |uri| {
            Ok(vec![Contents::Text {
                uri: uri.into(),
                mime: "text/plain".into(),
                text: "Hello from Conduit".into(),
            }])
        },
    ));
    mcp.registry.add_prompt(Prompt::new(
        "translate",
        "Translate a text",
        &[("text", "What to translate", true), ("to", "Target language", true)],
        |args| {
            let text = args.get("text").and_then(|v| v.as_str()).unwrap_or_default();
            let to = args.get("to").and_then(|v| v.as_str()).unwrap_or("English");
            Ok(json!({ "messages": [{ "role": "user", "content": { "type": "text", "text": format!("Translate into {to}:\n{text}") } }] }))
        },
    ));
    println!(
        "MCP server with word_count on http://{}/mcp (Ctrl-C to stop)",
        running.local_addr()
    );
    running.join();
    Ok(())
}
