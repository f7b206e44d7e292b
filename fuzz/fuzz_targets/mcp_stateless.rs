#![no_main]
use base64::Engine;
use conduit::fuzzing::{check_param_headers, check_stateless_headers, decode_param};
use conduit::http::{Method, Request};
use conduit::mcp::jsonrpc::{self, Message, Parsed};
use conduit::mcp::{has_stateless_meta, stateless_meta, McpConfig, Server, Tool, ToolResult};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};

// A server with one tool whose arguments also travel in headers (SEP-2243).
static SERVER: LazyLock<Arc<Server>> = LazyLock::new(|| {
    let s = Server::new(McpConfig {
        tool_threads: 1,
        ..McpConfig::default()
    });
    let schema = serde_json::json!({ "type": "object", "properties": {
        "region": { "type": "string", "x-mcp-header": "Region" },
        "n": { "type": "integer", "x-mcp-header": "N" } } });
    let tool = Tool::new("t", "", schema, |_, _| Ok(ToolResult::text("")));
    s.registry.add_tool(tool.expect("valid tool"));
    s
});

// Input: header lines (`name: value`), a NUL, then the JSON-RPC body.
fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (head, body) = (
        String::from_utf8_lossy(&data[..split]),
        data.get(split + 1..).unwrap_or(&[]),
    );
    let headers: Vec<(&str, &str)> = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .collect();
    for (_, v) in &headers {
        let wrapped = format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v)
        );
        assert_eq!(decode_param(&wrapped).as_deref(), Some(*v));
        if !v.starts_with("=?base64?") {
            assert_eq!(decode_param(v).as_deref(), Some(*v));
        }
    }
    let req = Request::synthetic(Method::Post, "/mcp", &headers, body);
    let Ok(Parsed::Single(Ok(msg))) = jsonrpc::parse(body) else {
        return;
    };
    let params = match &msg {
        Message::Request(r) => &r.params,
        Message::Notification(n) => &n.params,
        Message::Response(_) => return,
    };
    if let Ok(st) = stateless_meta(params) {
        assert!(has_stateless_meta(params));
        if check_stateless_headers(&req, &msg, &st).is_ok() {
            assert_eq!(
                req.header_str("mcp-protocol-version"),
                Some(st.version.as_str())
            );
        }
    }
    let _ = check_param_headers(&SERVER, &req, &msg);
});
