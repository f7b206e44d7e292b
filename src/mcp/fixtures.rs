//! The conformance suite's fixtures (`--fixtures conformance`): tools,
//! resources and prompts with the names `@modelcontextprotocol/conformance`
//! looks for.

use super::registry::{content, Contents, Prompt, Registry, Resource, Tool, ToolResult};
use serde_json::{json, Value};
use std::time::Duration;

fn add_tool(reg: &Registry, t: Result<Tool, super::Error>) {
    match t {
        Ok(t) => reg.add_tool(t),
        Err(e) => tracing::error!(error = %e, "conformance fixture failed to register"),
    }
}

/// A 1×1 red PNG.
const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A tiny valid WAV: 8 kHz, 8-bit mono, 8 samples of silence.
fn wav_b64() -> String {
    use base64::Engine;
    let samples = [128u8; 8];
    let mut w = Vec::with_capacity(44 + samples.len());
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    w.extend_from_slice(&samples);
    base64::engine::general_purpose::STANDARD.encode(w)
}

/// The text result the elicitation fixtures return for the client's answer.
fn elicitation_summary(r: &Value) -> ToolResult {
    let action = r.get("action").and_then(Value::as_str).unwrap_or("unknown");
    let content = r.get("content").cloned().unwrap_or(Value::Null);
    ToolResult::text(format!(
        "Elicitation completed: action={action}, content={content}"
    ))
}

fn no_args() -> Value {
    json!({ "type": "object", "properties": {} })
}

fn fixed(reg: &Registry, name: &str, description: &str, result: ToolResult) {
    add_tool(
        reg,
        Tool::new(name, description, no_args(), move |_, _| Ok(result.clone())),
    );
}

fn text_of(v: &Value) -> String {
    v.get("content")
        .and_then(|c| if c.is_array() { c.get(0) } else { Some(c) })
        .and_then(|c| c.get("text"))
        .and_then(Value::as_str)
        .map_or_else(|| v.to_string(), str::to_string)
}

/// The conformance suite's fixture set (MCP.md): tools, resources and
/// prompts with the names `@modelcontextprotocol/conformance` looks for.
pub fn conformance(reg: &Registry, server: &std::sync::Arc<super::Server>) {
    stateless_fixtures(reg, server);
    fixed(
        reg,
        "test_simple_text",
        "Returns a simple text response",
        ToolResult::text("This is a simple text response for testing."),
    );
    fixed(
        reg,
        "test_image_content",
        "Returns an image",
        ToolResult::content(vec![content::image(PNG_B64, "image/png")]),
    );
    fixed(
        reg,
        "test_audio_content",
        "Returns audio",
        ToolResult::content(vec![content::audio(wav_b64(), "audio/wav")]),
    );
    fixed(
        reg,
        "test_embedded_resource",
        "Returns an embedded resource",
        ToolResult::content(vec![content::resource_text(
            "test://embedded-resource",
            "text/plain",
            "This is an embedded resource content.",
        )]),
    );
    fixed(
        reg,
        "test_multiple_content_types",
        "Returns text, an image and a resource",
        ToolResult::content(vec![
            content::text("Multiple content types test:"),
            content::image(PNG_B64, "image/png"),
            content::resource_text(
                "test://mixed-content-resource",
                "application/json",
                r#"{"test":"data","value":123}"#,
            ),
        ]),
    );
    fixed(
        reg,
        "test_error_handling",
        "Always fails",
        ToolResult::error("This tool intentionally returns an error for testing"),
    );
    add_tool(
        reg,
        Tool::new(
            "test_tool_with_logging",
            "Sends three log messages while it runs",
            no_args(),
            |_, cx| {
                cx.log("info", Some("conformance"), json!("Tool execution started"));
                cx.sleep(Duration::from_millis(50));
                cx.log("info", Some("conformance"), json!("Tool processing data"));
                cx.sleep(Duration::from_millis(50));
                cx.log(
                    "info",
                    Some("conformance"),
                    json!("Tool execution completed"),
                );
                Ok(ToolResult::text("Tool with logging executed successfully"))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_tool_with_progress",
            "Reports progress 0, 50, 100 of 100",
            no_args(),
            |_, cx| {
                cx.progress(0.0, Some(100.0), None);
                cx.sleep(Duration::from_millis(50));
                cx.progress(50.0, Some(100.0), None);
                cx.sleep(Duration::from_millis(50));
                cx.progress(100.0, Some(100.0), None);
                Ok(ToolResult::text("Tool with progress executed successfully"))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_sampling",
            "Asks the client's LLM to answer a prompt (sampling/createMessage)",
            json!({ "type": "object", "properties": { "prompt": { "type": "string", "description": "The prompt to send to the LLM" } }, "required": ["prompt"] }),
            |args, cx| {
                cx.require_capability("sampling")?;
                let prompt = args
                    .get("prompt")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let r = cx.sample(json!({
                    "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
                    "maxTokens": 100
                }))?;
                Ok(ToolResult::text(format!("LLM response: {}", text_of(&r))))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_elicitation",
            "Asks the user for a username and email (elicitation/create)",
            json!({ "type": "object", "properties": { "message": { "type": "string", "description": "The message to show the user" } }, "required": ["message"] }),
            |args, cx| {
                cx.require_capability("elicitation")?;
                let message = args
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let r = cx.elicit(json!({
                    "message": message,
                    "requestedSchema": {
                        "type": "object",
                        "properties": {
                            "username": { "type": "string", "description": "User's response" },
                            "email": { "type": "string", "description": "User's email address" }
                        },
                        "required": ["username", "email"]
                    }
                }))?;
                Ok(ToolResult::text(format!("User response: {r}")))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_elicitation_sep1034_defaults",
            "Elicitation with defaults for every primitive type",
            no_args(),
            |_, cx| {
                let r = cx.elicit(json!({
                "message": "Please review and update the form fields with defaults",
                "requestedSchema": {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string", "description": "User name", "default": "John Doe" },
                        "age": { "type": "integer", "description": "User age", "default": 30 },
                        "score": { "type": "number", "description": "User score", "default": 95.5 },
                        "status": { "type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active" },
                        "verified": { "type": "boolean", "description": "Verification status", "default": true }
                    },
                    "required": []
                }
            }))?;
                Ok(elicitation_summary(&r))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_elicitation_sep1330_enums",
            "Elicitation with all five enum schema variants",
            no_args(),
            |_, cx| {
                let r = cx.elicit(json!({
                "message": "Please select options from the enum fields",
                "requestedSchema": {
                    "type": "object",
                    "properties": {
                        "untitledSingle": { "type": "string", "description": "Select one option", "enum": ["option1", "option2", "option3"] },
                        "titledSingle": { "type": "string", "description": "Select one option with titles", "oneOf": [
                            { "const": "value1", "title": "First Option" },
                            { "const": "value2", "title": "Second Option" },
                            { "const": "value3", "title": "Third Option" }
                        ] },
                        "legacyEnum": { "type": "string", "description": "Select one option (legacy)", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"] },
                        "untitledMulti": { "type": "array", "description": "Select multiple options", "minItems": 1, "maxItems": 3, "items": { "type": "string", "enum": ["option1", "option2", "option3"] } },
                        "titledMulti": { "type": "array", "description": "Select multiple options with titles", "minItems": 1, "maxItems": 3, "items": { "anyOf": [
                            { "const": "value1", "title": "First Choice" },
                            { "const": "value2", "title": "Second Choice" },
                            { "const": "value3", "title": "Third Choice" }
                        ] } }
                    },
                    "required": []
                }
            }))?;
                Ok(elicitation_summary(&r))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            // SEP-1613 / SEP-2106: every 2020-12 keyword must survive tools/list untouched.
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "$anchor": "addressDef",
                        "type": "object",
                        "properties": { "street": { "type": "string" }, "city": { "type": "string" } }
                    }
                },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" },
                    "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                    "phone": { "type": "string" },
                    "email": { "type": "string" }
                },
                "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
                "if": { "properties": { "contactMethod": { "const": "phone" } }, "required": ["contactMethod"] },
                "then": { "required": ["phone"] },
                "else": { "required": ["email"] },
                "additionalProperties": false
            }),
            |args, _| Ok(ToolResult::text(format!("Received: {args}"))),
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_reconnection",
            "Closes its SSE stream mid-call; the client resumes with Last-Event-ID",
            no_args(),
            |_, cx| {
                // SEP-1699: end the POST stream; the result arrives on the resumed GET.
                cx.close_stream();
                cx.sleep(Duration::from_millis(100));
                Ok(ToolResult::text("Reconnection test completed successfully"))
            },
        ),
    );

    reg.add_resource(Resource::new(
        "test://static-text",
        "static-text",
        "A static text resource",
        "text/plain",
        |uri| {
            Ok(vec![Contents::Text {
                uri: uri.into(),
                mime: "text/plain".into(),
                text: "This is the content of the static text resource.".into(),
            }])
        },
    ));
    reg.add_resource(Resource::new(
        "test://static-binary",
        "static-binary",
        "A static binary resource (PNG)",
        "image/png",
        |uri| {
            Ok(vec![Contents::Blob {
                uri: uri.into(),
                mime: "image/png".into(),
                blob: PNG_B64.into(),
            }])
        },
    ));
    reg.add_resource(Resource::new(
        "test://watched-resource",
        "watched-resource",
        "A resource clients can subscribe to",
        "text/plain",
        |uri| {
            Ok(vec![Contents::Text {
                uri: uri.into(),
                mime: "text/plain".into(),
                text: "Watched resource content.".into(),
            }])
        },
    ));
    reg.add_resource(Resource::template(
        "test://template/{id}/data",
        "template-data",
        "A templated resource",
        "application/json",
        |uri, vars| {
            let id = vars.get("id").cloned().unwrap_or_default();
            let text =
                json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") })
                    .to_string();
            Ok(vec![Contents::Text {
                uri: uri.into(),
                mime: "application/json".into(),
                text,
            }])
        },
    ));

    reg.add_prompt(Prompt::new("test_simple_prompt", "A simple prompt without arguments", &[], |_| {
        Ok(json!({ "messages": [{ "role": "user", "content": content::text("This is a simple prompt for testing.") }] }))
    }));
    reg.add_prompt(
        Prompt::new(
            "test_prompt_with_arguments",
            "A prompt with two required arguments",
            &[("arg1", "First test argument", true), ("arg2", "Second test argument", true)],
            |args| {
                let a = args.get("arg1").and_then(Value::as_str).unwrap_or_default();
                let b = args.get("arg2").and_then(Value::as_str).unwrap_or_default();
                Ok(json!({ "messages": [{ "role": "user", "content": content::text(format!("Prompt with arguments: arg1='{a}', arg2='{b}'")) }] }))
            },
        )
        .with_completion(|arg, value| {
            let options: &[&str] = match arg {
                "arg1" => &["paris", "park", "party", "test", "testing"],
                _ => &["alpha", "beta", "gamma"],
            };
            options.iter().filter(|o| o.starts_with(value)).map(|o| o.to_string()).collect()
        }),
    );
    reg.add_prompt(Prompt::new(
        "test_prompt_with_embedded_resource",
        "A prompt that embeds a resource",
        &[("resourceUri", "URI of the resource to embed", true)],
        |args| {
            let uri = args.get("resourceUri").and_then(Value::as_str).unwrap_or_default();
            Ok(json!({ "messages": [
                { "role": "user", "content": content::resource_text(uri, "text/plain", "Embedded resource content for testing.") },
                { "role": "user", "content": content::text("Please process the embedded resource above.") }
            ] }))
        },
    ));
    reg.add_prompt(Prompt::new(
        "test_prompt_with_image",
        "A prompt with an image",
        &[],
        |_| {
            Ok(json!({ "messages": [
            { "role": "user", "content": content::image(PNG_B64, "image/png") },
            { "role": "user", "content": content::text("Please analyze the image above.") }
        ] }))
        },
    ));
}

fn elicit_params(message: &str, field: &str, ty: &str) -> Value {
    json!({
        "message": message,
        "requestedSchema": { "type": "object", "properties": { field: { "type": ty } }, "required": [field] }
    })
}

fn sampling_params(text: &str, max_tokens: u32) -> Value {
    json!({ "messages": [{ "role": "user", "content": { "type": "text", "text": text } }], "maxTokens": max_tokens })
}

/// Fixtures of the 2026-07-28 suite: InputRequiredResult flows (SEP-2322),
/// capability and logging probes and list-change triggers (SEP-2575).
fn stateless_fixtures(reg: &Registry, server: &std::sync::Arc<super::Server>) {
    add_tool(
        reg,
        Tool::new(
            "test_input_required_result_elicitation",
            "Asks for the user's name, then greets",
            no_args(),
            |_, cx| {
                let r = cx.input(
                    "user_name",
                    "elicitation/create",
                    elicit_params("What is your name?", "name", "string"),
                )?;
                let name = r
                    .get("content")
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("stranger");
                Ok(ToolResult::text(format!("Hello, {name}!")))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_input_required_result_sampling",
            "Asks the client's LLM a question",
            no_args(),
            |_, cx| {
                let r = cx.input(
                    "capital_question",
                    "sampling/createMessage",
                    sampling_params("What is the capital of France?", 100),
                )?;
                Ok(ToolResult::text(format!("The model said: {}", text_of(&r))))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_input_required_result_list_roots",
            "Asks the client for its roots",
            no_args(),
            |_, cx| {
                let r = cx.input("client_roots", "roots/list", json!({}))?;
                let uris: Vec<&str> = r
                    .get("roots")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.get("uri").and_then(Value::as_str))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(ToolResult::text(format!(
                    "Client roots: {}",
                    uris.join(", ")
                )))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_input_required_result_request_state",
            "Round-trips a signed requestState",
            no_args(),
            |_, cx| {
                let params = json!({
                    "message": "Please confirm",
                    "requestedSchema": { "type": "object", "properties": { "ok": { "type": "boolean" } }, "required": ["ok"] }
                });
                cx.input("confirm", "elicitation/create", params)?;
                if !cx.has_request_state() {
                    return Ok(ToolResult::error(
                        "the retry did not carry the requestState",
                    ));
                }
                Ok(ToolResult::text("Confirmed: state-ok"))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_input_required_result_multiple_inputs",
            "Asks for three inputs in one round",
            no_args(),
            |_, cx| {
                let r = cx.inputs_all(vec![
                    (
                        "user_name",
                        "elicitation/create",
                        elicit_params("What is your name?", "name", "string"),
                    ),
                    (
                        "greeting",
                        "sampling/createMessage",
                        sampling_params("Generate a greeting", 50),
                    ),
                    ("client_roots", "roots/list", json!({})),
                ])?;
                Ok(ToolResult::text(format!("Received {} inputs", r.len())))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_input_required_result_multi_round",
            "Asks two questions in two rounds",
            no_args(),
            |_, cx| {
                let a = cx.input(
                    "step1",
                    "elicitation/create",
                    elicit_params("Step 1: What is your name?", "name", "string"),
                )?;
                let b = cx.input(
                    "step2",
                    "elicitation/create",
                    elicit_params("Step 2: What is your favorite color?", "color", "string"),
                )?;
                let name = a
                    .get("content")
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                let color = b
                    .get("content")
                    .and_then(|c| c.get("color"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                Ok(ToolResult::text(format!("{name} likes {color}")))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_input_required_result_tampered_state",
            "Rejects a tampered requestState",
            no_args(),
            |_, cx| {
                cx.input(
                    "confirm",
                    "elicitation/create",
                    elicit_params("Please confirm", "ok", "boolean"),
                )?;
                Ok(ToolResult::text("state verified"))
            },
        ),
    );
    reg.add_prompt(Prompt::with_inputs(
        "test_input_required_result_prompt",
        "A prompt that first asks the user for context",
        &[],
        |_, cx| {
            let r = cx.input("user_context", "elicitation/create", elicit_params("What context should the prompt use?", "context", "string"))?;
            let ctx = r.get("content").and_then(|c| c.get("context")).and_then(Value::as_str).unwrap_or_default();
            Ok(json!({
                "description": "A prompt built from the user's context",
                "messages": [{ "role": "user", "content": content::text(format!("Use this context: {ctx}")) }]
            }))
        },
    ));
    add_tool(
        reg,
        Tool::new(
            "test_input_required_result_capabilities",
            "Asks only for inputs the client can give",
            no_args(),
            |_, cx| {
                let mut wanted = Vec::new();
                if cx.client_has("sampling") {
                    wanted.push((
                        "question",
                        "sampling/createMessage",
                        sampling_params("Say something", 20),
                    ));
                }
                if cx.client_has("elicitation") {
                    wanted.push((
                        "user_name",
                        "elicitation/create",
                        elicit_params("What is your name?", "name", "string"),
                    ));
                }
                if cx.client_has("roots") {
                    wanted.push(("client_roots", "roots/list", json!({})));
                }
                let got = cx.inputs_all(wanted)?;
                Ok(ToolResult::text(format!("Received {} inputs", got.len())))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_custom_header",
            "Echoes a region that also travels in the Mcp-Param-Region header (SEP-2243)",
            json!({
                "type": "object",
                "properties": { "region": { "type": "string", "x-mcp-header": "Region" } },
                "required": ["region"]
            }),
            |args, _| {
                let region = args
                    .get("region")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Ok(ToolResult::text(format!("region: {region}")))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_missing_capability",
            "Needs the client's sampling capability",
            no_args(),
            |_, cx| {
                cx.require_capability("sampling")?;
                let r = cx.sample(sampling_params("Say hello", 20))?;
                Ok(ToolResult::text(text_of(&r)))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_streaming_elicitation",
            "Reports progress, then asks for input",
            no_args(),
            |_, cx| {
                cx.progress(0.0, Some(1.0), Some("starting"));
                let r = cx.input(
                    "answer",
                    "elicitation/create",
                    elicit_params("Continue?", "ok", "boolean"),
                )?;
                Ok(ToolResult::text(format!("Got {r}")))
            },
        ),
    );
    add_tool(
        reg,
        Tool::new(
            "test_logging_tool",
            "Logs three messages (only if the request set a log level)",
            no_args(),
            |_, cx| {
                for m in ["one", "two", "three"] {
                    cx.log("info", Some("conformance"), json!(m));
                }
                Ok(ToolResult::text("logged"))
            },
        ),
    );
    let weak = std::sync::Arc::downgrade(server);
    add_tool(
        reg,
        Tool::new(
            "test_trigger_tool_change",
            "Adds or removes a tool (a tools/list_changed trigger)",
            no_args(),
            move |_, _| {
                let Some(server) = weak.upgrade() else {
                    return Ok(ToolResult::error("server is gone"));
                };
                if !server.registry.remove_tool("test_dynamic_tool") {
                    let t = Tool::new(
                        "test_dynamic_tool",
                        "Appears and disappears",
                        no_args(),
                        |_, _| Ok(ToolResult::text("dynamic")),
                    );
                    if let Ok(t) = t {
                        server.registry.add_tool(t);
                    }
                }
                Ok(ToolResult::text("tools changed"))
            },
        ),
    );
    let weak = std::sync::Arc::downgrade(server);
    add_tool(
        reg,
        Tool::new(
            "test_trigger_prompt_change",
            "Adds or removes a prompt (a prompts/list_changed trigger)",
            no_args(),
            move |_, _| {
                let Some(server) = weak.upgrade() else {
                    return Ok(ToolResult::error("server is gone"));
                };
                if !server.registry.remove_prompt("test_dynamic_prompt") {
                    server.registry.add_prompt(Prompt::new("test_dynamic_prompt", "Appears and disappears", &[], |_| {
                    Ok(json!({ "messages": [{ "role": "user", "content": content::text("dynamic") }] }))
                }));
                }
                Ok(ToolResult::text("prompts changed"))
            },
        ),
    );
}
