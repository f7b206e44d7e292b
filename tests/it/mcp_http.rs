//! MCP over HTTP: SECURITY.md §4 (M1–M5, M7–M9, M13, M16; L4, L14), the
//! JSON-RPC surface of the built-in tools, resources and prompts, both
//! protocol eras of Streamable HTTP, and the legacy HTTP+SSE transport.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub(crate) const VERSION: &str = "2025-11-25";
pub(crate) const STATELESS: &str = "2026-07-28";
const ACCEPT: &str = "application/json, text/event-stream";

// ---------------------------------------------------------------------------
// A small raw-socket MCP client.

fn to_body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

pub(crate) fn rpc(id: i64, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

pub(crate) fn notification(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

pub(crate) fn init_msg(version: &str) -> Value {
    rpc(
        1,
        "initialize",
        json!({
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": { "name": "it", "version": "0" }
        }),
    )
}

/// `POST /mcp` with a JSON body, `Accept` for both reply kinds, plus `extra`.
/// A header in `extra` replaces the default of the same name.
fn post_mcp(extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut h: Vec<(&str, &str)> = [("Content-Type", "application/json"), ("Accept", ACCEPT)]
        .into_iter()
        .filter(|(n, _)| !extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(n)))
        .collect();
    h.extend_from_slice(extra);
    http_request("POST", "/mcp", &h, body)
}

/// A POST inside session `sid`.
pub(crate) fn session_post(sid: &str, msg: &Value) -> Vec<u8> {
    post_mcp(
        &[("Mcp-Session-Id", sid), ("MCP-Protocol-Version", VERSION)],
        &to_body(msg),
    )
}

/// `GET /mcp` for an SSE stream, plus `extra`.
pub(crate) fn get_mcp(extra: &[(&str, &str)]) -> Vec<u8> {
    let mut h = vec![("Accept", "text/event-stream")];
    h.extend_from_slice(extra);
    http_request("GET", "/mcp", &h, b"")
}

pub(crate) fn send(addr: SocketAddr, raw: &[u8]) -> RawResponse {
    exchange(addr, raw).0
}

/// Opens a session at `version` and sends `notifications/initialized`.
fn initialize_version(addr: SocketAddr, version: &str) -> String {
    let resp = send(addr, &post_mcp(&[], &to_body(&init_msg(version))));
    assert_eq!(
        resp.status,
        200,
        "initialize: {:?} {}",
        resp.head,
        resp.body_str()
    );
    assert_json(&resp);
    let sid = resp
        .header("mcp-session-id")
        .expect("initialize reply carries Mcp-Session-Id")
        .to_string();
    let v = resp.json();
    assert_eq!(v["id"], 1);
    assert_eq!(v["result"]["protocolVersion"], version, "{v}");
    assert!(v["result"]["capabilities"]["tools"].is_object(), "{v}");
    assert!(v["result"]["serverInfo"]["name"].is_string(), "{v}");
    let n = send(
        addr,
        &session_post(&sid, &notification("notifications/initialized", json!({}))),
    );
    assert_eq!(n.status, 202, "{:?}", n.head);
    sid
}

pub(crate) fn initialize(addr: SocketAddr) -> String {
    initialize_version(addr, VERSION)
}

#[track_caller]
fn assert_json(resp: &RawResponse) {
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "content-type {ct:?}: {:?}",
        resp.head
    );
}

/// A request inside a session answered with 200 JSON; the JSON-RPC message.
#[track_caller]
fn request(addr: SocketAddr, sid: &str, id: i64, method: &str, params: Value) -> Value {
    let resp = send(addr, &session_post(sid, &rpc(id, method, params)));
    assert_eq!(
        resp.status,
        200,
        "{method}: {:?} {}",
        resp.head,
        resp.body_str()
    );
    assert_json(&resp);
    let v = resp.json();
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    assert_eq!(v["id"], id, "{v}");
    v
}

/// The `result` of a successful request.
#[track_caller]
pub(crate) fn result(addr: SocketAddr, sid: &str, method: &str, params: Value) -> Value {
    let v = request(addr, sid, 7, method, params);
    assert!(v.get("error").is_none(), "{method}: unexpected error {v}");
    v["result"].clone()
}

/// The JSON-RPC error code of a reply.
#[track_caller]
fn code(v: &Value) -> i64 {
    assert!(v.get("result").is_none(), "expected an error, got {v}");
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error code in {v}"))
}

/// Sends `raw` on a fresh connection whose reply is a stream; returns its
/// head and a reader for its events.
pub(crate) fn open_stream(addr: SocketAddr, raw: &[u8]) -> (RawResponse, SseReader) {
    let mut r = Reader::new(connect(addr));
    r.send(raw);
    let head = r.response_to("HEAD");
    (head, SseReader::new(r))
}

#[track_caller]
pub(crate) fn assert_sse_head(head: &RawResponse) {
    assert_eq!(head.status, 200, "{:?}", head.head);
    assert_eq!(
        head.header("content-type"),
        Some("text/event-stream"),
        "{:?}",
        head.head
    );
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header("x-accel-buffering"), Some("no"), "M9");
    assert!(head.header("content-length").is_none());
}

/// `<stream>-<seq>` → (stream, seq).
#[track_caller]
fn event_id(ev: &SseEvent) -> (u64, u64) {
    let id = ev.id.as_deref().unwrap_or_else(|| panic!("no id: {ev:?}"));
    let (a, b) = id
        .split_once('-')
        .unwrap_or_else(|| panic!("id {id:?} is not <stream>-<seq>"));
    (a.parse().unwrap(), b.parse().unwrap())
}

fn sleep_call(id: i64, ms: u64, token: Option<&str>) -> Value {
    let mut params = json!({ "name": "sleep", "arguments": { "ms": ms } });
    if let Some(t) = token {
        params["_meta"] = json!({ "progressToken": t });
    }
    rpc(id, "tools/call", params)
}

fn is_progress(v: &Value) -> bool {
    v["method"] == "notifications/progress"
}

// ---------------------------------------------------------------------------
// M1: Origin.

#[test]
fn m1_foreign_origin_is_forbidden_on_every_mcp_endpoint() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let evil = [("Origin", "http://evil.example.com")];
    let init = to_body(&init_msg(VERSION));
    for (what, raw) in [
        ("POST initialize", post_mcp(&evil, &init)),
        (
            "POST in session",
            post_mcp(
                &[
                    ("Origin", "http://evil.example.com"),
                    ("Mcp-Session-Id", &sid),
                    ("MCP-Protocol-Version", VERSION),
                ],
                &to_body(&rpc(2, "ping", json!({}))),
            ),
        ),
        (
            "GET /mcp",
            get_mcp(&[
                ("Origin", "http://evil.example.com"),
                ("Mcp-Session-Id", &sid),
            ]),
        ),
        (
            "DELETE /mcp",
            http_request(
                "DELETE",
                "/mcp",
                &[
                    ("Origin", "http://evil.example.com"),
                    ("Mcp-Session-Id", &sid),
                ],
                b"",
            ),
        ),
        (
            "GET /mcp/sse (M16)",
            http_request("GET", "/mcp/sse", &evil, b""),
        ),
        (
            "Origin on another port of an evil host",
            post_mcp(&[("Origin", "https://evil.example.com:443")], &init),
        ),
        ("Origin null", post_mcp(&[("Origin", "null")], &init)),
        (
            "Origin that only starts like localhost",
            post_mcp(&[("Origin", "http://localhost.evil.example.com")], &init),
        ),
    ] {
        let resp = send(srv.addr, &raw);
        assert_eq!(resp.status, 403, "{what}: {:?}", resp.head);
        assert!(
            resp.header("mcp-session-id").is_none(),
            "{what}: no session for a forbidden request"
        );
        if !resp.body.is_empty() {
            // The body MAY be a JSON-RPC error without an id.
            let v = resp.json();
            assert!(v["id"].is_null(), "{what}: {v}");
            assert!(v["error"]["code"].is_i64(), "{what}: {v}");
        }
    }
    // The DELETE was refused, so the session still works.
    request(srv.addr, &sid, 3, "ping", json!({}));
}

#[test]
fn m1_absent_or_loopback_origin_is_allowed() {
    let srv = spawn_server(test_config());
    let port = srv.addr.port();
    let init = to_body(&init_msg(VERSION));
    let resp = send(srv.addr, &post_mcp(&[], &init));
    assert_eq!(resp.status, 200, "no Origin: {:?}", resp.head);
    for origin in [
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
        "http://localhost".to_string(),
    ] {
        let resp = send(srv.addr, &post_mcp(&[("Origin", &origin)], &init));
        assert_eq!(resp.status, 200, "Origin {origin}: {:?}", resp.head);
        assert!(resp.header("mcp-session-id").is_some());
    }
}

// ---------------------------------------------------------------------------
// M2: Host and the absolute-form authority.

#[test]
fn m2_foreign_host_is_forbidden_including_absolute_form() {
    let srv = spawn_server(test_config());
    let port = srv.addr.port();
    let init = to_body(&init_msg(VERSION));
    let evil_port = format!("evil.example.com:{port}");
    for host in [
        "evil.example.com",
        evil_port.as_str(),
        "localhost.evil.example.com",
    ] {
        let resp = send(srv.addr, &post_mcp(&[("Host", host)], &init));
        assert_eq!(resp.status, 403, "Host {host}: {:?}", resp.head);
        assert!(resp.header("mcp-session-id").is_none());
    }
    // S18: the absolute-form authority is the host, whatever Host says.
    let abs = |authority: &str| {
        let mut raw = format!(
            "POST http://{authority}/mcp HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/json\r\nAccept: {ACCEPT}\r\nContent-Length: {}\r\n\r\n",
            init.len()
        )
        .into_bytes();
        raw.extend_from_slice(&init);
        raw
    };
    let resp = send(srv.addr, &abs("evil.example.com"));
    assert_eq!(resp.status, 403, "absolute-form evil: {:?}", resp.head);
    let resp = send(srv.addr, &abs(&evil_port));
    assert_eq!(resp.status, 403, "absolute-form evil:port: {:?}", resp.head);
    // Userinfo must not smuggle an allowed name in front of the real host.
    let mut r = Reader::new(connect(srv.addr));
    r.send(&abs("localhost@evil.example.com"));
    let resp = r.response();
    assert!(
        (400..500).contains(&resp.status),
        "absolute-form with userinfo: {:?}",
        resp.head
    );
    // The legacy stream is guarded the same way.
    let resp = send(
        srv.addr,
        &http_request("GET", "/mcp/sse", &[("Host", "evil.example.com")], b""),
    );
    assert_eq!(resp.status, 403, "legacy GET: {:?}", resp.head);
}

#[test]
fn m2_loopback_hosts_with_any_port_are_allowed() {
    let srv = spawn_server(test_config());
    let port = srv.addr.port();
    let init = to_body(&init_msg(VERSION));
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "LOCALHOST".to_string(),
        "localhost:1".to_string(),
    ] {
        let resp = send(srv.addr, &post_mcp(&[("Host", &host)], &init));
        assert_eq!(resp.status, 200, "Host {host}: {:?}", resp.head);
    }
    // S18: an allowed absolute-form authority wins over a foreign Host header.
    let mut raw = format!(
        "POST http://localhost:{port}/mcp HTTP/1.1\r\nHost: evil.example.com\r\n\
         Content-Type: application/json\r\nAccept: {ACCEPT}\r\nContent-Length: {}\r\n\r\n",
        init.len()
    )
    .into_bytes();
    raw.extend_from_slice(&init);
    let resp = send(srv.addr, &raw);
    assert_eq!(resp.status, 200, "absolute-form localhost: {:?}", resp.head);
}

// ---------------------------------------------------------------------------
// M3: loopback by default.

#[test]
fn m3_default_bind_is_loopback() {
    let cfg = conduit::config::Config::default();
    assert_eq!(
        cfg.server.listen.ip(),
        std::net::IpAddr::from([127, 0, 0, 1])
    );
    let mcp = conduit::mcp::McpConfig::default();
    assert!(mcp.enabled);
    for h in ["localhost", "127.0.0.1", "[::1]"] {
        assert!(
            mcp.allowed_hosts.iter().any(|x| x == h),
            "allowed_hosts {h}"
        );
        assert!(
            mcp.allowed_origins.iter().any(|x| x == h),
            "allowed_origins {h}"
        );
    }
    assert_eq!(mcp.max_body_bytes, 4 * 1024 * 1024, "L4");
}

// ---------------------------------------------------------------------------
// M4: session ids.

#[test]
fn m4_session_ids_are_random_visible_ascii_and_distinct() {
    let srv = spawn_server(test_config());
    let ids: Vec<String> = (0..8).map(|_| initialize(srv.addr)).collect();
    for id in &ids {
        assert_eq!(id.len(), 32, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{id}: 32 lowercase hex digits"
        );
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{id}");
    }
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    // Not sequential: consecutive ids differ in many hex digits (128 random
    // bits differ in ~30 of 32 digits; a counter would differ in one or two).
    for w in ids.windows(2) {
        let diff = w[0]
            .bytes()
            .zip(w[1].bytes())
            .filter(|(a, b)| a != b)
            .count();
        assert!(diff >= 12, "ids look sequential: {} {}", w[0], w[1]);
    }
}

// ---------------------------------------------------------------------------
// M5: session lifecycle.

#[test]
fn m5_requests_need_a_live_session() {
    let srv = spawn_server(test_config());
    let ping = to_body(&rpc(2, "ping", json!({})));
    let resp = send(
        srv.addr,
        &post_mcp(&[("MCP-Protocol-Version", VERSION)], &ping),
    );
    assert_eq!(resp.status, 400, "no session id: {:?}", resp.head);
    let unknown = "0123456789abcdef0123456789abcdef";
    let resp = send(
        srv.addr,
        &post_mcp(
            &[
                ("Mcp-Session-Id", unknown),
                ("MCP-Protocol-Version", VERSION),
            ],
            &ping,
        ),
    );
    assert_eq!(resp.status, 404, "unknown session: {:?}", resp.head);
    let resp = send(srv.addr, &get_mcp(&[]));
    assert_eq!(resp.status, 400, "GET without session: {:?}", resp.head);
    let resp = send(srv.addr, &get_mcp(&[("Mcp-Session-Id", unknown)]));
    assert_eq!(resp.status, 404, "GET unknown session: {:?}", resp.head);
    let resp = send(srv.addr, &http_request("DELETE", "/mcp", &[], b""));
    assert_eq!(resp.status, 400, "DELETE without session: {:?}", resp.head);
    let resp = send(
        srv.addr,
        &http_request("DELETE", "/mcp", &[("Mcp-Session-Id", unknown)], b""),
    );
    assert_eq!(resp.status, 404, "DELETE unknown session: {:?}", resp.head);
}

#[test]
fn m5_delete_ends_the_session() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let other = initialize(srv.addr);
    request(srv.addr, &sid, 2, "ping", json!({}));
    let resp = send(
        srv.addr,
        &http_request(
            "DELETE",
            "/mcp",
            &[("Mcp-Session-Id", &sid), ("MCP-Protocol-Version", VERSION)],
            b"",
        ),
    );
    assert!((200..300).contains(&resp.status), "DELETE: {:?}", resp.head);
    let resp = send(srv.addr, &session_post(&sid, &rpc(3, "ping", json!({}))));
    assert_eq!(resp.status, 404, "POST after DELETE: {:?}", resp.head);
    let resp = send(srv.addr, &get_mcp(&[("Mcp-Session-Id", &sid)]));
    assert_eq!(resp.status, 404, "GET after DELETE: {:?}", resp.head);
    let resp = send(
        srv.addr,
        &http_request("DELETE", "/mcp", &[("Mcp-Session-Id", &sid)], b""),
    );
    assert_eq!(resp.status, 404, "second DELETE: {:?}", resp.head);
    // Other sessions are untouched.
    request(srv.addr, &other, 4, "ping", json!({}));
}

// ---------------------------------------------------------------------------
// M7: MCP-Protocol-Version.

#[test]
fn m7_invalid_protocol_version_header_is_400() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    for bad in ["1999-01-01", "not-a-version", "2025-11-26", ""] {
        let resp = send(
            srv.addr,
            &post_mcp(
                &[("Mcp-Session-Id", &sid), ("MCP-Protocol-Version", bad)],
                &to_body(&rpc(2, "ping", json!({}))),
            ),
        );
        assert_eq!(resp.status, 400, "version {bad:?}: {:?}", resp.head);
    }
}

#[test]
fn m7_absent_or_supported_protocol_version_is_accepted() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let ping = to_body(&rpc(2, "ping", json!({})));
    let resp = send(srv.addr, &post_mcp(&[("Mcp-Session-Id", &sid)], &ping));
    assert_eq!(resp.status, 200, "absent header: {:?}", resp.head);
    assert_eq!(resp.json()["result"], json!({}));
    let old = initialize_version(srv.addr, "2025-06-18");
    let resp = send(
        srv.addr,
        &post_mcp(
            &[
                ("Mcp-Session-Id", &old),
                ("MCP-Protocol-Version", "2025-06-18"),
            ],
            &ping,
        ),
    );
    assert_eq!(resp.status, 200, "2025-06-18: {:?}", resp.head);
    // An unknown version asked at initialize is answered with the latest.
    let resp = send(srv.addr, &post_mcp(&[], &to_body(&init_msg("1999-01-01"))));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["result"]["protocolVersion"], VERSION);
}

#[test]
fn m7_get_and_delete_refuse_an_invalid_protocol_version() {
    // The transport spec's rule covers every request after initialize, not only POSTs.
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let mut r = Reader::new(connect(srv.addr));
    r.send(&get_mcp(&[
        ("Mcp-Session-Id", &sid),
        ("MCP-Protocol-Version", "1999-01-01"),
    ]));
    let resp = r.response_to("HEAD");
    assert_eq!(resp.status, 400, "GET with a bad version: {:?}", resp.head);
    drop(r);
    let resp = send(
        srv.addr,
        &http_request(
            "DELETE",
            "/mcp",
            &[
                ("Mcp-Session-Id", &sid),
                ("MCP-Protocol-Version", "1999-01-01"),
            ],
            b"",
        ),
    );
    assert_eq!(
        resp.status, 400,
        "DELETE with a bad version: {:?}",
        resp.head
    );
}

// ---------------------------------------------------------------------------
// M8: what a POST may carry and how it is answered.

#[test]
fn m8_notifications_and_responses_get_202_with_an_empty_body() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    for msg in [
        notification("notifications/initialized", json!({})),
        notification("notifications/roots/list_changed", json!({})),
        notification("notifications/cancelled", json!({ "requestId": 12345 })),
        json!({ "jsonrpc": "2.0", "id": "conduit-999", "result": {} }),
        json!({ "jsonrpc": "2.0", "id": "conduit-998", "error": { "code": -1, "message": "no" } }),
    ] {
        let resp = send(srv.addr, &session_post(&sid, &msg));
        assert_eq!(resp.status, 202, "{msg}: {:?}", resp.head);
        assert!(resp.body.is_empty(), "{msg}: body {:?}", resp.body_str());
    }
}

#[test]
fn m8_requests_are_answered_with_json_or_an_event_stream() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let ping = to_body(&rpc(5, "ping", json!({})));
    let with = |accept: &str| {
        http_request(
            "POST",
            "/mcp",
            &[
                ("Content-Type", "application/json"),
                ("Accept", accept),
                ("Mcp-Session-Id", &sid),
                ("MCP-Protocol-Version", VERSION),
            ],
            &ping,
        )
    };
    let resp = send(srv.addr, &with(ACCEPT));
    assert_eq!(resp.status, 200);
    assert_json(&resp);
    let resp = send(srv.addr, &with("application/json"));
    assert_eq!(resp.status, 200);
    assert_json(&resp);
    // A client that takes only SSE gets the reply as an event.
    let (head, mut sse) = open_stream(srv.addr, &with("text/event-stream"));
    assert_sse_head(&head);
    let events = sse.rest();
    let replies: Vec<Value> = events
        .iter()
        .filter(|e| !e.data.as_deref().unwrap_or_default().is_empty())
        .map(SseEvent::json)
        .collect();
    assert_eq!(replies.len(), 1, "{events:?}");
    assert_eq!(replies[0]["id"], 5);
    assert_eq!(replies[0]["result"], json!({}));
    // initialize over SSE-only still names the session in the head.
    let (head, mut sse) = open_stream(
        srv.addr,
        &http_request(
            "POST",
            "/mcp",
            &[
                ("Content-Type", "application/json"),
                ("Accept", "text/event-stream"),
            ],
            &to_body(&init_msg(VERSION)),
        ),
    );
    assert_sse_head(&head);
    assert!(head.header("mcp-session-id").is_some(), "{:?}", head.head);
    let ev = sse.next_event().expect("initialize result");
    assert_eq!(ev.json()["result"]["protocolVersion"], VERSION);
    // Neither JSON nor SSE acceptable → 406; not JSON → 415.
    let resp = send(srv.addr, &with("text/html"));
    assert_eq!(resp.status, 406, "{:?}", resp.head);
    let resp = send(
        srv.addr,
        &http_request(
            "POST",
            "/mcp",
            &[
                ("Content-Type", "text/plain"),
                ("Accept", ACCEPT),
                ("Mcp-Session-Id", &sid),
            ],
            &ping,
        ),
    );
    assert_eq!(resp.status, 415, "{:?}", resp.head);
    let resp = send(
        srv.addr,
        &http_request(
            "POST",
            "/mcp",
            &[("Accept", ACCEPT), ("Mcp-Session-Id", &sid)],
            &ping,
        ),
    );
    assert_eq!(resp.status, 415, "no Content-Type: {:?}", resp.head);
}

#[test]
fn m8_a_json_array_body_is_an_invalid_request() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    for body in [
        to_body(&json!([
            rpc(2, "ping", json!({})),
            rpc(3, "ping", json!({}))
        ])),
        to_body(&json!([rpc(2, "ping", json!({}))])),
        b"[]".to_vec(),
    ] {
        let resp = send(
            srv.addr,
            &post_mcp(
                &[("Mcp-Session-Id", &sid), ("MCP-Protocol-Version", VERSION)],
                &body,
            ),
        );
        assert_eq!(resp.status, 400, "{:?}", resp.head);
        let v = resp.json();
        assert!(v.is_object(), "one error, not a batch reply: {v}");
        assert_eq!(code(&v), -32600, "{v}");
        assert!(v["id"].is_null(), "{v}");
    }
}

// ---------------------------------------------------------------------------
// M9: SSE streams and resumption.

#[test]
fn m9_a_progress_stream_resumes_with_last_event_id_and_repeats_nothing() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let (head, mut sse) = open_stream(
        srv.addr,
        &session_post(&sid, &sleep_call(42, 600, Some("tok"))),
    );
    assert_sse_head(&head);
    // The http layer's retry comes first, then the 2025-11-25 priming event.
    let first = sse.next_block().unwrap();
    assert_eq!(first.retry, Some(3000), "{first:?}");
    let priming = sse.next_event().unwrap();
    assert_eq!(priming.data.as_deref(), Some(""), "priming: {priming:?}");
    let (stream, seq0) = event_id(&priming);
    let mut ids = vec![seq0];
    let mut progress = Vec::new();
    for _ in 0..3 {
        let ev = sse.next_event().unwrap();
        let (s, seq) = event_id(&ev);
        assert_eq!(s, stream, "{ev:?}");
        ids.push(seq);
        let v = ev.json();
        assert!(is_progress(&v), "{v}");
        assert_eq!(v["params"]["progressToken"], "tok");
        progress.push(v["params"]["progress"].as_f64().unwrap());
    }
    // The client loses the connection mid-call…
    drop(sse);
    let last = format!("{stream}-{}", ids.last().unwrap());
    // …and resumes the stream from the last event it saw.
    let (head, mut sse) = open_stream(
        srv.addr,
        &get_mcp(&[
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", VERSION),
            ("Last-Event-ID", &last),
        ]),
    );
    assert_sse_head(&head);
    let rest: Vec<SseEvent> = sse
        .rest()
        .into_iter()
        .filter(|e| !e.data.as_deref().unwrap_or_default().is_empty())
        .collect();
    let mut final_reply = None;
    for ev in &rest {
        let (s, seq) = event_id(ev);
        assert_eq!(s, stream, "only that stream is replayed: {ev:?}");
        assert_eq!(
            seq,
            ids.last().unwrap() + 1,
            "ids continue without gaps or repeats: {rest:?}"
        );
        ids.push(seq);
        let v = ev.json();
        if is_progress(&v) {
            assert!(final_reply.is_none(), "progress after the result: {rest:?}");
            progress.push(v["params"]["progress"].as_f64().unwrap());
        } else {
            assert!(final_reply.is_none(), "two results: {rest:?}");
            final_reply = Some(v);
        }
    }
    let expected: Vec<f64> = (1..=10).map(|i| f64::from(i) * 10.0).collect();
    assert_eq!(
        progress, expected,
        "every progress event exactly once, in order"
    );
    let v = final_reply.expect("the final result arrives on the resumed stream");
    assert_eq!(v["id"], 42);
    assert_eq!(v["result"]["content"][0]["text"], "slept 600 ms", "{v}");
}

#[test]
fn m9_each_call_has_its_own_stream_and_resumption_replays_only_that_one() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let (head_a, mut a) = open_stream(
        srv.addr,
        &session_post(&sid, &sleep_call(1, 300, Some("a"))),
    );
    let (head_b, mut b) = open_stream(
        srv.addr,
        &session_post(&sid, &sleep_call(2, 300, Some("b"))),
    );
    assert_sse_head(&head_a);
    assert_sse_head(&head_b);
    let pa = a.next_event().unwrap();
    let (stream_a, seq_a) = event_id(&pa);
    drop(a);
    let events_b = b.rest();
    let (stream_b, _) = event_id(&events_b[0]);
    assert_ne!(stream_a, stream_b, "two calls, two streams");
    let mut b_msgs = Vec::new();
    for ev in &events_b {
        assert_eq!(event_id(ev).0, stream_b, "{ev:?}");
        if !ev.data.as_deref().unwrap_or_default().is_empty() {
            b_msgs.push(ev.json());
        }
    }
    assert!(
        b_msgs
            .iter()
            .all(|v| (is_progress(v) && v["params"]["progressToken"] == "b") || v["id"] == 2),
        "{b_msgs:?}"
    );
    assert_eq!(b_msgs.last().unwrap()["id"], 2);
    assert_eq!(b_msgs.iter().filter(|v| is_progress(v)).count(), 10);
    let (head, mut a) = open_stream(
        srv.addr,
        &get_mcp(&[
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", VERSION),
            ("Last-Event-ID", &format!("{stream_a}-{seq_a}")),
        ]),
    );
    assert_sse_head(&head);
    let mut a_msgs = Vec::new();
    for ev in a.rest() {
        assert_eq!(event_id(&ev).0, stream_a, "{ev:?}");
        if !ev.data.as_deref().unwrap_or_default().is_empty() {
            a_msgs.push(ev.json());
        }
    }
    assert_eq!(
        a_msgs.iter().filter(|v| is_progress(v)).count(),
        10,
        "{a_msgs:?}"
    );
    assert!(a_msgs
        .iter()
        .filter(|v| is_progress(v))
        .all(|v| v["params"]["progressToken"] == "a"));
    assert_eq!(a_msgs.last().unwrap()["id"], 1, "{a_msgs:?}");
}

#[test]
fn m9_the_get_stream_primes_and_only_one_is_open_per_session() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let hdrs = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", VERSION),
    ];
    let (head, mut sse) = open_stream(srv.addr, &get_mcp(&hdrs));
    assert_sse_head(&head);
    assert_eq!(sse.next_block().unwrap().retry, Some(3000));
    let priming = sse.next_event().unwrap();
    assert_eq!(priming.data.as_deref(), Some(""), "{priming:?}");
    event_id(&priming);
    let resp = send(srv.addr, &get_mcp(&hdrs));
    assert_eq!(resp.status, 409, "second GET stream: {:?}", resp.head);
    // Ending the session ends its stream.
    let resp = send(srv.addr, &http_request("DELETE", "/mcp", &hdrs, b""));
    assert!((200..300).contains(&resp.status), "{:?}", resp.head);
    assert!(
        sse.rest().is_empty(),
        "the GET stream ends with no more events"
    );
}

#[test]
fn m9_a_2025_06_18_session_gets_no_priming_event() {
    let srv = spawn_server(test_config());
    let sid = initialize_version(srv.addr, "2025-06-18");
    let (head, mut sse) = open_stream(
        srv.addr,
        &post_mcp(
            &[
                ("Mcp-Session-Id", &sid),
                ("MCP-Protocol-Version", "2025-06-18"),
            ],
            &to_body(&sleep_call(3, 50, Some("t"))),
        ),
    );
    assert_sse_head(&head);
    let events = sse.rest();
    assert!(!events.is_empty());
    for ev in &events {
        event_id(ev);
        assert!(
            !ev.data.as_deref().unwrap().is_empty(),
            "no priming event before 2025-11-25: {ev:?}"
        );
    }
    assert_eq!(events.last().unwrap().json()["id"], 3);
}

// ---------------------------------------------------------------------------
// M13 / L4: body cap, answered before the body is read.

#[test]
fn m13_an_oversized_body_is_refused_before_it_is_read() {
    let srv = spawn_server(test_config());
    let head = |len: u64| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Accept: {ACCEPT}\r\nContent-Length: {len}\r\n\r\n"
        )
        .into_bytes()
    };
    // 5 MiB announced, nothing sent: the 413 cannot wait for the body.
    let mut r = Reader::new(connect(srv.addr));
    r.send(&head(5 * 1024 * 1024));
    r.expect_error_close(413, "5 MiB POST");
    // 100 MB announced with a little of the body.
    let mut r = Reader::new(connect(srv.addr));
    let mut raw = head(100_000_000);
    raw.extend_from_slice(br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":""#);
    raw.extend_from_slice(&[b'x'; 4096]);
    r.send_lossy(&raw);
    r.expect_error_close(413, "100 MB POST");
    // 100-continue over the cap: 413, and no 100 Continue first (L4).
    let mut r = Reader::new(connect(srv.addr));
    let mut raw = head(5 * 1024 * 1024);
    let at = raw.len() - 2;
    raw.splice(at..at, b"Expect: 100-continue\r\n".iter().copied());
    r.send(&raw);
    r.expect_error_close(413, "5 MiB POST with Expect: 100-continue");
    // One byte over the cap.
    let mut r = Reader::new(connect(srv.addr));
    r.send(&head(4 * 1024 * 1024 + 1));
    r.expect_error_close(413, "4 MiB + 1 POST");
    // A chunked body announcing a chunk past the cap.
    let mut r = Reader::new(connect(srv.addr));
    r.send(
        format!(
            "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{{",
            5 * 1024 * 1024
        )
        .as_bytes(),
    );
    r.expect_error_close(413, "chunked 5 MiB");
    // The legacy POST path shares the cap.
    let mut r = Reader::new(connect(srv.addr));
    r.send(
        format!(
            "POST /mcp?sessionId=0123456789abcdef0123456789abcdef HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            5 * 1024 * 1024
        )
        .as_bytes(),
    );
    r.expect_error_close(413, "legacy 5 MiB POST");
}

#[test]
fn m13_a_body_exactly_at_the_cap_is_served() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let mut body = to_body(&rpc(9, "ping", json!({})));
    body.resize(4 * 1024 * 1024, b' ');
    let resp = send(
        srv.addr,
        &post_mcp(
            &[("Mcp-Session-Id", &sid), ("MCP-Protocol-Version", VERSION)],
            &body,
        ),
    );
    assert_eq!(resp.status, 200, "{:?}", resp.head);
    assert_eq!(resp.json()["result"], json!({}));
}

// ---------------------------------------------------------------------------
// Malformed bodies (L14 and friends): JSON-RPC errors, never a crash.

#[test]
fn malformed_bodies_are_parse_errors() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("truncated object", b"{".to_vec()),
        (
            "truncated message",
            br#"{"jsonrpc":"2.0","id":1,"method":"ping""#.to_vec(),
        ),
        ("empty body", Vec::new()),
        ("not JSON", b"hello".to_vec()),
        (
            "binary",
            vec![0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x01, 0x02],
        ),
        (
            "invalid UTF-8 inside a string",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffing\"}".to_vec(),
        ),
        (
            "trailing garbage",
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"} x"#.to_vec(),
        ),
    ];
    for (what, body) in bodies {
        let resp = send(
            srv.addr,
            &post_mcp(
                &[("Mcp-Session-Id", &sid), ("MCP-Protocol-Version", VERSION)],
                &body,
            ),
        );
        assert_eq!(resp.status, 400, "{what}: {:?}", resp.head);
        let v = resp.json();
        assert_eq!(code(&v), -32700, "{what}: {v}");
        assert!(v["id"].is_null(), "{what}: {v}");
        assert_eq!(v["jsonrpc"], "2.0");
    }
    request(srv.addr, &sid, 2, "ping", json!({}));
}

#[test]
fn l14_json_nested_10000_deep_is_a_parse_error_not_a_crash() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let arrays = "[".repeat(10_000) + &"]".repeat(10_000);
    let objects = r#"{"a":"#.repeat(10_000) + "1" + &"}".repeat(10_000);
    let in_args = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":{arrays}}}}}}}"#
    );
    for (what, body) in [
        ("arrays", arrays.clone()),
        ("objects", objects),
        ("inside arguments", in_args),
    ] {
        let resp = send(
            srv.addr,
            &post_mcp(
                &[("Mcp-Session-Id", &sid), ("MCP-Protocol-Version", VERSION)],
                body.as_bytes(),
            ),
        );
        assert_eq!(resp.status, 400, "{what}: {:?}", resp.head);
        assert_eq!(code(&resp.json()), -32700, "{what}");
    }
    // Also before any session lookup.
    let resp = send(srv.addr, &post_mcp(&[], arrays.as_bytes()));
    assert_eq!(code(&resp.json()), -32700);
    // The server is still up.
    request(srv.addr, &sid, 2, "ping", json!({}));
}

// ---------------------------------------------------------------------------
// JSON-RPC basics in a session.

#[test]
fn invalid_messages_are_invalid_requests() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    for (body, id) in [
        (json!({ "id": 1, "method": "ping" }), json!(1)),
        (
            json!({ "jsonrpc": "1.0", "id": 1, "method": "ping" }),
            json!(1),
        ),
        (json!({ "jsonrpc": "2.0", "id": 1, "method": 5 }), json!(1)),
        (
            json!({ "jsonrpc": "2.0", "id": {}, "method": "ping" }),
            Value::Null,
        ),
        (
            json!({ "jsonrpc": "2.0", "id": null, "method": "ping" }),
            Value::Null,
        ),
        (
            json!({ "jsonrpc": "2.0", "id": true, "method": "ping" }),
            Value::Null,
        ),
        (
            json!({ "jsonrpc": "2.0", "id": [1], "method": "ping" }),
            Value::Null,
        ),
        (json!({ "jsonrpc": "2.0", "id": 1 }), json!(1)),
        (json!({ "jsonrpc": "2.0" }), Value::Null),
        (json!(5), Value::Null),
        (json!("ping"), Value::Null),
    ] {
        let resp = send(
            srv.addr,
            &post_mcp(
                &[("Mcp-Session-Id", &sid), ("MCP-Protocol-Version", VERSION)],
                &to_body(&body),
            ),
        );
        assert_eq!(resp.status, 400, "{body}: {:?}", resp.head);
        let v = resp.json();
        assert_eq!(code(&v), -32600, "{body}: {v}");
        assert_eq!(v["id"], id, "{body}: {v}");
    }
}

#[test]
fn unknown_methods_are_method_not_found() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    for m in ["foo/bar", "tools/lists", "", "server/discover/x"] {
        let v = request(srv.addr, &sid, 11, m, json!({}));
        assert_eq!(code(&v), -32601, "{m}: {v}");
    }
}

#[test]
fn unknown_tools_and_bad_params_are_invalid_params() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    for (method, params) in [
        (
            "tools/call",
            json!({ "name": "no_such_tool", "arguments": {} }),
        ),
        ("tools/call", json!({ "arguments": { "text": "x" } })),
        ("tools/call", json!({ "name": 5 })),
        ("tools/list", json!({ "cursor": "not-a-cursor" })),
        ("tools/list", json!({ "cursor": 3 })),
        ("resources/read", json!({})),
        (
            "prompts/get",
            json!({ "name": "no_such_prompt", "arguments": {} }),
        ),
    ] {
        let v = request(srv.addr, &sid, 12, method, params.clone());
        assert_eq!(code(&v), -32602, "{method} {params}: {v}");
    }
    // params that are not an object
    let resp = send(
        srv.addr,
        &post_mcp(
            &[("Mcp-Session-Id", &sid), ("MCP-Protocol-Version", VERSION)],
            br#"{"jsonrpc":"2.0","id":13,"method":"tools/call","params":[1]}"#,
        ),
    );
    let v = resp.json();
    assert_eq!(code(&v), -32602, "{v}");
    assert_eq!(v["id"], 13);
}

#[test]
fn ping_returns_an_empty_object_and_echoes_the_id() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    for id in [
        json!("abc"),
        json!(0),
        json!(-5),
        json!(1.5e3),
        json!(9007199254740993u64),
    ] {
        let resp = send(
            srv.addr,
            &session_post(
                &sid,
                &json!({ "jsonrpc": "2.0", "id": id, "method": "ping" }),
            ),
        );
        assert_eq!(resp.status, 200);
        let v = resp.json();
        assert_eq!(v["result"], json!({}), "{v}");
        assert_eq!(v["id"], id, "{v}");
    }
}

#[test]
fn tools_list_is_stable_and_has_no_next_cursor() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let a = result(srv.addr, &sid, "tools/list", json!({}));
    let b = result(srv.addr, &sid, "tools/list", json!({}));
    assert_eq!(a, b, "same list twice");
    assert!(a.get("nextCursor").is_none(), "{a}");
    let names: Vec<&str> = a["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for n in ["echo", "add", "sleep"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(
        pos("echo") < pos("add") && pos("add") < pos("sleep"),
        "registration order: {names:?}"
    );
    for t in a["tools"].as_array().unwrap() {
        assert!(t["description"].is_string(), "{t}");
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
    }
    let add = &a["tools"][pos("add")];
    assert_eq!(add["outputSchema"]["type"], "object", "{add}");
    // Session-era results carry no stateless fields.
    assert!(a.get("resultType").is_none(), "{a}");
}

#[test]
fn tool_argument_errors_are_is_error_results_not_protocol_errors() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    for (name, args) in [
        ("echo", json!({ "text": 5 })),
        ("echo", json!({})),
        ("echo", json!({ "text": "x", "extra": 1 })),
        ("add", json!({ "a": "one", "b": 2 })),
        ("sleep", json!({ "ms": -1 })),
    ] {
        let r = result(
            srv.addr,
            &sid,
            "tools/call",
            json!({ "name": name, "arguments": args }),
        );
        assert_eq!(r["isError"], true, "{name} {args}: {r}");
        assert_eq!(r["content"][0]["type"], "text", "{r}");
        assert!(!r["content"][0]["text"].as_str().unwrap().is_empty());
    }
    let r = result(
        srv.addr,
        &sid,
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "hi\nthere" } }),
    );
    assert_eq!(r["content"][0]["text"], "hi\nthere");
    assert!(r.get("isError").is_none() || r["isError"] == false, "{r}");
}

#[test]
fn add_returns_structured_content() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let r = result(
        srv.addr,
        &sid,
        "tools/call",
        json!({ "name": "add", "arguments": { "a": 2, "b": 3.5 } }),
    );
    assert_eq!(r["structuredContent"], json!({ "sum": 5.5 }), "{r}");
    let text = r["content"][0]["text"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        parsed, r["structuredContent"],
        "text content mirrors structuredContent"
    );
}

#[test]
fn resources_read_the_readme_and_unknown_uris_are_32002() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let list = result(srv.addr, &sid, "resources/list", json!({}));
    assert!(
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["uri"] == "conduit://readme"),
        "{list}"
    );
    let r = result(
        srv.addr,
        &sid,
        "resources/read",
        json!({ "uri": "conduit://readme" }),
    );
    let c = &r["contents"][0];
    assert_eq!(c["uri"], "conduit://readme");
    assert_eq!(c["mimeType"], "text/markdown");
    assert!(c["text"].as_str().unwrap().starts_with("# Conduit"), "{c}");
    let v = request(
        srv.addr,
        &sid,
        8,
        "resources/read",
        json!({ "uri": "conduit://nope" }),
    );
    assert_eq!(code(&v), -32002, "{v}");
    assert_eq!(v["error"]["data"]["uri"], "conduit://nope", "{v}");
}

#[test]
fn prompts_get_checks_required_arguments() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let list = result(srv.addr, &sid, "prompts/list", json!({}));
    assert!(
        list["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "summarize"),
        "{list}"
    );
    let r = result(
        srv.addr,
        &sid,
        "prompts/get",
        json!({ "name": "summarize", "arguments": { "text": "abc" } }),
    );
    assert_eq!(r["messages"][0]["role"], "user", "{r}");
    assert!(
        r["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("abc"),
        "{r}"
    );
    for params in [
        json!({ "name": "summarize", "arguments": {} }),
        json!({ "name": "summarize" }),
    ] {
        let v = request(srv.addr, &sid, 8, "prompts/get", params.clone());
        assert_eq!(code(&v), -32602, "{params}: {v}");
    }
}

#[test]
fn logging_set_level_accepts_known_levels_only() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    for level in ["debug", "warning", "emergency"] {
        let r = result(
            srv.addr,
            &sid,
            "logging/setLevel",
            json!({ "level": level }),
        );
        assert_eq!(r, json!({}), "{level}");
    }
    for params in [
        json!({ "level": "loud" }),
        json!({ "level": 3 }),
        json!({}),
        json!({ "level": "WARNING" }),
    ] {
        let v = request(srv.addr, &sid, 8, "logging/setLevel", params.clone());
        assert_eq!(code(&v), -32602, "{params}: {v}");
    }
}

// ---------------------------------------------------------------------------
// Running calls: cancellation, vanished clients, the session cap.

#[test]
fn notifications_cancelled_stops_a_running_sleep() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let start = Instant::now();
    let (head, mut sse) = open_stream(
        srv.addr,
        &session_post(&sid, &sleep_call(9, 5000, Some("c"))),
    );
    assert_sse_head(&head);
    // The first progress event proves the call is running.
    let mut progress = 0;
    loop {
        let ev = sse.next_event().expect("the call's events");
        if !ev.data.as_deref().unwrap().is_empty() && is_progress(&ev.json()) {
            progress += 1;
            break;
        }
    }
    let resp = send(
        srv.addr,
        &session_post(
            &sid,
            &notification(
                "notifications/cancelled",
                json!({ "requestId": 9, "reason": "test" }),
            ),
        ),
    );
    assert_eq!(resp.status, 202);
    // The stream ends soon, with an error or a result for id 9 (or, as the
    // spec prefers, with no response at all).
    for ev in sse.rest() {
        if ev.data.as_deref().unwrap().is_empty() {
            continue;
        }
        let v = ev.json();
        if is_progress(&v) {
            progress += 1;
        } else {
            assert_eq!(v["id"], 9, "{v}");
            assert!(v.get("error").is_some() || v.get("result").is_some(), "{v}");
        }
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "cancelled call ran {took:?} of 5 s"
    );
    assert!(
        progress < 10,
        "the call stopped early ({progress} progress events)"
    );
    // The session is fine afterwards.
    request(srv.addr, &sid, 10, "ping", json!({}));
}

#[test]
fn cancelling_a_json_only_call_ends_it_early_without_a_response() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let start = Instant::now();
    let mut call = Reader::new(connect(srv.addr));
    call.send(&post_mcp(
        &[
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", VERSION),
            ("Accept", "application/json"),
        ],
        &to_body(&sleep_call(21, 5000, None)),
    ));
    // The cancel may reach the server before the call starts; repeat it until
    // the call answers (cancelling an unknown id is a no-op).
    let resp = loop {
        let c = send(
            srv.addr,
            &session_post(
                &sid,
                &notification("notifications/cancelled", json!({ "requestId": 21 })),
            ),
        );
        assert_eq!(c.status, 202);
        if call.poll_for(Duration::from_millis(100)) {
            break call.response();
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the call was not cancelled"
        );
    };
    // MCP cancellation: the server SHOULD NOT answer a cancelled request, so
    // the POST ends with 202 and no JSON-RPC response.
    assert_eq!(resp.status, 202, "{:?}", resp.head);
    assert!(resp.body.is_empty());
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_client_vanishing_mid_call_does_not_disturb_other_sessions() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    // A JSON-only call whose client goes away while it runs.
    {
        let mut r = Reader::new(connect(srv.addr));
        r.send(&post_mcp(
            &[
                ("Mcp-Session-Id", &sid),
                ("MCP-Protocol-Version", VERSION),
                ("Accept", "application/json"),
            ],
            &to_body(&sleep_call(1, 300, Some("gone"))),
        ));
    }
    // A streamed call whose client goes away after the first events.
    {
        let (head, mut sse) = open_stream(
            srv.addr,
            &session_post(&sid, &sleep_call(2, 300, Some("gone2"))),
        );
        assert_sse_head(&head);
        sse.next_event().unwrap();
    }
    let other = initialize(srv.addr);
    let r = result(
        srv.addr,
        &other,
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "still here" } }),
    );
    assert_eq!(r["content"][0]["text"], "still here");
    request(srv.addr, &sid, 3, "ping", json!({}));
    // A call that outlasts the abandoned ones: they have finished into dead
    // connections by the time it answers, and nothing broke.
    let r = result(
        srv.addr,
        &other,
        "tools/call",
        json!({ "name": "sleep", "arguments": { "ms": 450 } }),
    );
    assert_eq!(r["content"][0]["text"], "slept 450 ms");
    request(srv.addr, &sid, 4, "ping", json!({}));
    request(srv.addr, &other, 5, "ping", json!({}));
    let resp = send(srv.addr, &get("/plaintext"));
    assert_eq!(resp.status, 200);
}

#[test]
fn m18_at_max_sessions_the_least_recently_used_idle_session_makes_room() {
    // See: #13 (6). At the cap the least recently used idle session is
    // evicted; only when every session is busy (an open stream, a running
    // call) is a new one refused: 503, Retry-After, and a JSON-RPC error
    // that says why.
    let mut cfg = test_config();
    cfg.mcp.max_sessions = 2;
    let srv = spawn_server(cfg);
    let a = initialize(srv.addr);
    let b = initialize(srv.addr);
    request(srv.addr, &a, 2, "ping", json!({}));
    let c = initialize(srv.addr);
    let resp = send(srv.addr, &session_post(&b, &rpc(3, "ping", json!({}))));
    assert_eq!(
        resp.status, 404,
        "b was the least recently used: {:?}",
        resp.head
    );
    request(srv.addr, &a, 4, "ping", json!({}));
    request(srv.addr, &c, 5, "ping", json!({}));
    // Both sessions busy: their GET streams are open.
    let streams: Vec<SseReader> = [&a, &c]
        .iter()
        .map(|sid| {
            let (head, sse) = open_stream(
                srv.addr,
                &get_mcp(&[("Mcp-Session-Id", sid), ("MCP-Protocol-Version", VERSION)]),
            );
            assert_sse_head(&head);
            sse
        })
        .collect();
    let resp = send(srv.addr, &post_mcp(&[], &to_body(&init_msg(VERSION))));
    assert_busy(&resp, 1, "max_sessions");
    assert!(resp.header("mcp-session-id").is_none());
    // A legacy stream is a session too.
    let resp = send(srv.addr, &http_request("GET", "/mcp/sse", &[], b""));
    assert_eq!(resp.status, 503, "{:?}", resp.head);
    assert!(resp.header("retry-after").is_some(), "{:?}", resp.head);
    request(srv.addr, &a, 6, "ping", json!({}));
    request(srv.addr, &c, 7, "ping", json!({}));
    // A stream closing makes its session idle, and so evictable.
    drop(streams);
    let d = wait_for(
        Duration::from_secs(3),
        "a session once a stream closed",
        || {
            let resp = send(srv.addr, &post_mcp(&[], &to_body(&init_msg(VERSION))));
            match resp.header("mcp-session-id") {
                Some(sid) => Ok(sid.to_string()),
                None => Err(resp.status),
            }
        },
    );
    request(srv.addr, &d, 8, "ping", json!({}));
}

#[test]
fn m18_an_anonymous_initialize_flood_cannot_fill_the_session_table() {
    // See: #13 (6). 1,100 anonymous initializes against the default cap of
    // 1,000: every one gets a session, and so does the next real client,
    // which can call a tool.
    let srv = spawn_server(test_config());
    let init = post_mcp(&[], &to_body(&init_msg(VERSION)));
    let mut r = Reader::new(connect(srv.addr));
    let mut first = None;
    for i in 0..1100 {
        r.send(&init);
        let resp = r.response();
        assert_eq!(
            resp.status,
            200,
            "initialize {i}: {:?} {}",
            resp.head,
            resp.body_str()
        );
        if first.is_none() {
            first = resp.header("mcp-session-id").map(str::to_string);
        }
        if resp.closes() {
            r = Reader::new(connect(srv.addr));
        }
    }
    let sid = initialize(srv.addr);
    let v = result(
        srv.addr,
        &sid,
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "in" } }),
    );
    assert_eq!(v["content"][0]["text"], "in");
    // The oldest flood session made room.
    let first = first.unwrap();
    let resp = send(srv.addr, &session_post(&first, &rpc(2, "ping", json!({}))));
    assert_eq!(resp.status, 404, "{:?}", resp.head);
}

#[test]
fn m18_a_session_never_used_after_initialize_expires_soon() {
    // See: #13 (6). A session whose client makes no request after
    // `initialize` lives `mcp.unused_session_timeout_ms`, not the idle timeout.
    let mut cfg = test_config();
    cfg.mcp.unused_session_timeout = Duration::from_millis(200);
    let srv = spawn_server(cfg);
    let unused = initialize(srv.addr);
    let used = initialize(srv.addr);
    request(srv.addr, &used, 1, "ping", json!({}));
    // The subject of the test is time passing.
    std::thread::sleep(Duration::from_millis(400));
    let resp = send(srv.addr, &session_post(&unused, &rpc(2, "ping", json!({}))));
    assert_eq!(resp.status, 404, "unused session: {:?}", resp.head);
    request(srv.addr, &used, 3, "ping", json!({}));
}

// ---------------------------------------------------------------------------
// M16: the legacy HTTP+SSE transport (2024-11-05).

/// Opens a legacy stream; returns it and the POST path from its endpoint event.
pub(crate) fn open_legacy(addr: SocketAddr) -> (SseReader, String) {
    let (head, mut sse) = open_stream(
        addr,
        &http_request("GET", "/mcp/sse", &[("Accept", "text/event-stream")], b""),
    );
    assert_sse_head(&head);
    let ev = sse.next_event().expect("endpoint event");
    assert_eq!(ev.event.as_deref(), Some("endpoint"), "first event: {ev:?}");
    let path = ev.data.unwrap();
    let id = path
        .strip_prefix("/mcp?sessionId=")
        .unwrap_or_else(|| panic!("endpoint {path:?}"));
    assert_eq!(id.len(), 32, "{path}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{path}");
    (sse, path)
}

pub(crate) fn legacy_post(path: &str, msg: &Value) -> Vec<u8> {
    http_request(
        "POST",
        path,
        &[("Content-Type", "application/json")],
        &to_body(msg),
    )
}

/// The next `event: message` on a legacy stream, as JSON.
pub(crate) fn legacy_message(sse: &mut SseReader) -> Value {
    let ev = sse.next_event().expect("a message event");
    assert_eq!(ev.event.as_deref(), Some("message"), "{ev:?}");
    assert!(ev.id.is_none(), "{ev:?}");
    ev.json()
}

#[test]
fn m16_legacy_transport_end_to_end() {
    let srv = spawn_server(test_config());
    let (mut sse, path) = open_legacy(srv.addr);
    let resp = send(srv.addr, &legacy_post(&path, &init_msg("2024-11-05")));
    assert_eq!(resp.status, 202, "{:?}", resp.head);
    let v = legacy_message(&mut sse);
    assert_eq!(v["id"], 1);
    assert_eq!(v["result"]["protocolVersion"], "2024-11-05", "{v}");
    let resp = send(
        srv.addr,
        &legacy_post(&path, &notification("notifications/initialized", json!({}))),
    );
    assert_eq!(resp.status, 202);
    let resp = send(
        srv.addr,
        &legacy_post(
            &path,
            &rpc(
                2,
                "tools/call",
                json!({ "name": "echo", "arguments": { "text": "over sse" } }),
            ),
        ),
    );
    assert_eq!(resp.status, 202);
    let v = legacy_message(&mut sse);
    assert_eq!(v["id"], 2, "{v}");
    assert_eq!(v["result"]["content"][0]["text"], "over sse", "{v}");
    send(srv.addr, &legacy_post(&path, &rpc(3, "ping", json!({}))));
    let v = legacy_message(&mut sse);
    assert_eq!(
        (v["id"].clone(), v["result"].clone()),
        (json!(3), json!({}))
    );
    // A pool tool with progress: notifications, then the result, all on the stream.
    send(srv.addr, &legacy_post(&path, &sleep_call(4, 50, Some("p"))));
    let mut progress = 0;
    loop {
        let v = legacy_message(&mut sse);
        if is_progress(&v) {
            progress += 1;
            continue;
        }
        assert_eq!(v["id"], 4, "{v}");
        assert_eq!(v["result"]["content"][0]["text"], "slept 50 ms");
        break;
    }
    assert_eq!(progress, 10);
    // Errors travel the same way.
    send(srv.addr, &legacy_post(&path, &rpc(5, "nope", json!({}))));
    assert_eq!(code(&legacy_message(&mut sse)), -32601);
    let resp = send(
        srv.addr,
        &http_request("POST", &path, &[("Content-Type", "application/json")], b"{"),
    );
    assert_eq!(resp.status, 400);
    assert_eq!(code(&resp.json()), -32700);
}

#[test]
fn m16_legacy_posts_to_unknown_sessions_are_404() {
    let srv = spawn_server(test_config());
    let ping = rpc(1, "ping", json!({}));
    let resp = send(
        srv.addr,
        &legacy_post("/mcp?sessionId=0123456789abcdef0123456789abcdef", &ping),
    );
    assert_eq!(resp.status, 404, "{:?}", resp.head);
    let resp = send(srv.addr, &legacy_post("/mcp?sessionId=", &ping));
    assert_eq!(resp.status, 404, "empty id: {:?}", resp.head);
    // A Streamable HTTP session id is not a legacy endpoint.
    let sid = initialize(srv.addr);
    let resp = send(
        srv.addr,
        &legacy_post(&format!("/mcp?sessionId={sid}"), &ping),
    );
    assert_eq!(resp.status, 404, "streamable id: {:?}", resp.head);
    // Two legacy streams get distinct endpoints.
    let (_a, pa) = open_legacy(srv.addr);
    let (_b, pb) = open_legacy(srv.addr);
    assert_ne!(pa, pb);
}

#[test]
fn m16_legacy_streams_are_capped() {
    let mut cfg = test_config();
    cfg.mcp.max_legacy_streams = 2;
    let srv = spawn_server(cfg);
    let (_a, pa) = open_legacy(srv.addr);
    let (_b, _) = open_legacy(srv.addr);
    let resp = send(
        srv.addr,
        &http_request("GET", "/mcp/sse", &[("Accept", "text/event-stream")], b""),
    );
    assert_eq!(resp.status, 503, "third legacy stream: {:?}", resp.head);
    // Open streams and Streamable HTTP keep working.
    assert_eq!(
        send(srv.addr, &legacy_post(&pa, &rpc(1, "ping", json!({})))).status,
        202
    );
    let sid = initialize(srv.addr);
    request(srv.addr, &sid, 2, "ping", json!({}));
}

// ---------------------------------------------------------------------------
// Stateless era (2026-07-28).

pub(crate) fn stateless_msg(id: i64, method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS,
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    rpc(id, method, params)
}

/// A stateless POST with headers `MCP-Protocol-Version` (`version`),
/// `Mcp-Method` and `Mcp-Name` (each left out when `None`).
pub(crate) fn stateless_post(
    version: Option<&str>,
    method: Option<&str>,
    name: Option<&str>,
    msg: &Value,
) -> Vec<u8> {
    let mut h = Vec::new();
    if let Some(v) = version {
        h.push(("MCP-Protocol-Version", v));
    }
    if let Some(m) = method {
        h.push(("Mcp-Method", m));
    }
    if let Some(n) = name {
        h.push(("Mcp-Name", n));
    }
    post_mcp(&h, &to_body(msg))
}

#[test]
fn stateless_tools_call_with_matching_headers_completes() {
    let srv = spawn_server(test_config());
    let msg = stateless_msg(
        1,
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "hi" } }),
    );
    let resp = send(
        srv.addr,
        &stateless_post(Some(STATELESS), Some("tools/call"), Some("echo"), &msg),
    );
    assert_eq!(resp.status, 200, "{:?} {}", resp.head, resp.body_str());
    assert_json(&resp);
    assert!(
        resp.header("mcp-session-id").is_none(),
        "no sessions in 2026-07-28"
    );
    let v = resp.json();
    assert_eq!(v["id"], 1);
    assert_eq!(v["result"]["resultType"], "complete", "{v}");
    assert_eq!(v["result"]["content"][0]["text"], "hi", "{v}");
    // List results carry resultType and caching hints.
    let msg = stateless_msg(2, "tools/list", json!({}));
    let v = send(
        srv.addr,
        &stateless_post(Some(STATELESS), Some("tools/list"), None, &msg),
    )
    .json();
    assert_eq!(v["result"]["resultType"], "complete", "{v}");
    assert!(v["result"]["tools"].as_array().unwrap().len() >= 3);
    assert!(v["result"].get("ttlMs").is_some(), "{v}");
    // A missing resource is -32602 in this era.
    let msg = stateless_msg(3, "resources/read", json!({ "uri": "conduit://nope" }));
    let v = send(
        srv.addr,
        &stateless_post(
            Some(STATELESS),
            Some("resources/read"),
            Some("conduit://nope"),
            &msg,
        ),
    )
    .json();
    assert_eq!(code(&v), -32602, "{v}");
    // A tool with structured output.
    let msg = stateless_msg(
        4,
        "tools/call",
        json!({ "name": "add", "arguments": { "a": 1, "b": 2 } }),
    );
    let v = send(
        srv.addr,
        &stateless_post(Some(STATELESS), Some("tools/call"), Some("add"), &msg),
    )
    .json();
    assert_eq!(v["result"]["structuredContent"]["sum"], 3.0, "{v}");
}

#[test]
fn stateless_header_mismatches_are_400_with_32020() {
    let srv = spawn_server(test_config());
    let call = stateless_msg(
        1,
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "hi" } }),
    );
    for (what, version, method, name) in [
        ("missing Mcp-Method", Some(STATELESS), None, Some("echo")),
        (
            "Mcp-Method mismatch",
            Some(STATELESS),
            Some("tools/list"),
            Some("echo"),
        ),
        (
            "missing Mcp-Name",
            Some(STATELESS),
            Some("tools/call"),
            None,
        ),
        (
            "Mcp-Name mismatch",
            Some(STATELESS),
            Some("tools/call"),
            Some("add"),
        ),
        (
            "version header mismatch",
            Some(VERSION),
            Some("tools/call"),
            Some("echo"),
        ),
        (
            "missing version header",
            None,
            Some("tools/call"),
            Some("echo"),
        ),
    ] {
        let resp = send(srv.addr, &stateless_post(version, method, name, &call));
        assert_eq!(resp.status, 400, "{what}: {:?}", resp.head);
        let v = resp.json();
        assert_eq!(code(&v), -32020, "{what}: {v}");
        assert_eq!(v["id"], 1, "{what}: {v}");
    }
    let msg = stateless_msg(
        2,
        "prompts/get",
        json!({ "name": "summarize", "arguments": { "text": "x" } }),
    );
    let resp = send(
        srv.addr,
        &stateless_post(Some(STATELESS), Some("prompts/get"), Some("other"), &msg),
    );
    assert_eq!((resp.status, code(&resp.json())), (400, -32020));
    let msg = stateless_msg(3, "resources/read", json!({ "uri": "conduit://readme" }));
    let resp = send(
        srv.addr,
        &stateless_post(
            Some(STATELESS),
            Some("resources/read"),
            Some("conduit://other"),
            &msg,
        ),
    );
    assert_eq!((resp.status, code(&resp.json())), (400, -32020));
    let resp = send(
        srv.addr,
        &stateless_post(
            Some(STATELESS),
            Some("resources/read"),
            Some("conduit://readme"),
            &msg,
        ),
    );
    assert_eq!(resp.status, 200, "{:?}", resp.head);
    assert_eq!(resp.json()["result"]["resultType"], "complete");
}

#[test]
fn stateless_unknown_methods_and_ping_are_404_with_32601() {
    let srv = spawn_server(test_config());
    for method in ["foo/bar", "ping", "logging/setLevel", "initialize"] {
        let msg = stateless_msg(5, method, json!({}));
        let resp = send(
            srv.addr,
            &stateless_post(Some(STATELESS), Some(method), None, &msg),
        );
        assert_eq!(resp.status, 404, "{method}: {:?}", resp.head);
        let v = resp.json();
        assert_eq!(code(&v), -32601, "{method}: {v}");
        assert_eq!(v["id"], 5);
    }
}

#[test]
fn stateless_server_discover_lists_2026_07_28() {
    let srv = spawn_server(test_config());
    let msg = stateless_msg(6, "server/discover", json!({}));
    let resp = send(
        srv.addr,
        &stateless_post(Some(STATELESS), Some("server/discover"), None, &msg),
    );
    assert_eq!(resp.status, 200, "{:?}", resp.head);
    let v = resp.json();
    let r = &v["result"];
    assert!(
        r["supportedVersions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == STATELESS),
        "{v}"
    );
    assert_eq!(r["resultType"], "complete");
    assert!(r["capabilities"]["tools"].is_object(), "{v}");
    assert!(r["serverInfo"]["name"].is_string(), "{v}");
}

#[test]
fn stateless_unsupported_version_is_32022() {
    let srv = spawn_server(test_config());
    let mut msg = stateless_msg(7, "tools/list", json!({}));
    msg["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let resp = send(
        srv.addr,
        &stateless_post(Some("2099-01-01"), Some("tools/list"), None, &msg),
    );
    assert_eq!(resp.status, 400, "{:?}", resp.head);
    assert_eq!(code(&resp.json()), -32022);
}

// ---------------------------------------------------------------------------
// Pagination, server-to-client messages, isolation between sessions.

#[test]
fn tools_list_paginates_only_past_100_tools_in_stable_order() {
    use conduit::mcp::{Tool, ToolResult};
    let srv = spawn_server(test_config());
    let mcp = srv.running().mcp().expect("MCP is on").clone();
    let sid = initialize(srv.addr);
    let base = result(srv.addr, &sid, "tools/list", json!({}))["tools"]
        .as_array()
        .unwrap()
        .len();
    let add = |i: usize| {
        mcp.registry.add_tool(
            Tool::new(
                &format!("t{i:03}"),
                "d",
                json!({ "type": "object" }),
                |_, _| Ok(ToolResult::text("x")),
            )
            .unwrap(),
        )
    };
    for i in 0..100 - base {
        add(i);
    }
    let page = result(srv.addr, &sid, "tools/list", json!({}));
    assert_eq!(page["tools"].as_array().unwrap().len(), 100);
    assert!(
        page.get("nextCursor").is_none(),
        "exactly 100 tools: one page"
    );
    add(100);
    let p1 = result(srv.addr, &sid, "tools/list", json!({}));
    assert_eq!(p1["tools"].as_array().unwrap().len(), 100);
    let cursor = p1["nextCursor"]
        .as_str()
        .expect("101 tools: a next page")
        .to_string();
    let p2 = result(srv.addr, &sid, "tools/list", json!({ "cursor": cursor }));
    assert_eq!(p2["tools"].as_array().unwrap().len(), 1, "{p2}");
    assert_eq!(p2["tools"][0]["name"], "t100");
    assert!(p2.get("nextCursor").is_none(), "{p2}");
    assert_eq!(
        p1,
        result(srv.addr, &sid, "tools/list", json!({})),
        "stable"
    );
}

#[test]
fn m9_server_notifications_use_the_get_stream_only_and_it_resumes() {
    use conduit::mcp::ListKind;
    let srv = spawn_server(test_config());
    let mcp = srv.running().mcp().expect("MCP is on").clone();
    let sid = initialize(srv.addr);
    let hdrs = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", VERSION),
    ];
    let (head, mut get) = open_stream(srv.addr, &get_mcp(&hdrs));
    assert_sse_head(&head);
    let priming = get.next_event().unwrap();
    let (gs, g0) = event_id(&priming);
    // A call's stream is open at the same time.
    let (head, mut call) = open_stream(
        srv.addr,
        &session_post(&sid, &sleep_call(1, 200, Some("c"))),
    );
    assert_sse_head(&head);
    call.next_event().unwrap();
    mcp.list_changed(ListKind::Tools);
    let ev = get.next_event().unwrap();
    assert_eq!(event_id(&ev), (gs, g0 + 1), "{ev:?}");
    assert_eq!(ev.json()["method"], "notifications/tools/list_changed");
    for ev in call.rest() {
        let d = ev.data.unwrap();
        assert!(!d.contains("list_changed"), "a message on two streams: {d}");
    }
    // The GET stream drops; notifications sent meanwhile are kept…
    drop(get);
    mcp.list_changed(ListKind::Prompts);
    mcp.list_changed(ListKind::Resources);
    // …and replayed, in order, after the last id the client saw.
    let last = format!("{gs}-{}", g0 + 1);
    let mut h = hdrs.to_vec();
    h.push(("Last-Event-ID", &last));
    let (head, mut get) = open_stream(srv.addr, &get_mcp(&h));
    assert_sse_head(&head);
    let a = get.next_event().unwrap();
    let b = get.next_event().unwrap();
    assert_eq!(event_id(&a), (gs, g0 + 2), "{a:?}");
    assert_eq!(a.json()["method"], "notifications/prompts/list_changed");
    assert_eq!(event_id(&b), (gs, g0 + 3), "{b:?}");
    assert_eq!(b.json()["method"], "notifications/resources/list_changed");
    send(srv.addr, &http_request("DELETE", "/mcp", &hdrs, b""));
    assert!(get.rest().is_empty(), "nothing replayed twice");
}

#[test]
fn m9_last_event_id_never_replays_another_sessions_stream() {
    let srv = spawn_server(test_config());
    let a = initialize(srv.addr);
    let b = initialize(srv.addr);
    let (head, mut sse) = open_stream(
        srv.addr,
        &session_post(&a, &sleep_call(1, 50, Some("secret"))),
    );
    assert_sse_head(&head);
    let events = sse.rest();
    let (stream_a, _) = event_id(&events[0]);
    let hdrs = [
        ("Mcp-Session-Id", b.as_str()),
        ("MCP-Protocol-Version", VERSION),
        ("Last-Event-ID", &format!("{stream_a}-0")),
    ];
    let mut r = Reader::new(connect(srv.addr));
    r.send(&get_mcp(&hdrs));
    let head = r.response_to("HEAD");
    if head.status == 200 {
        // A fresh stream for B; end it by ending B and check what it carried.
        let mut sse = SseReader::new(r);
        send(srv.addr, &http_request("DELETE", "/mcp", &hdrs[..1], b""));
        for ev in sse.rest() {
            assert_ne!(event_id(&ev).0, stream_a, "B got A's stream: {ev:?}");
            assert!(!ev.data.unwrap().contains("secret"), "B got A's events");
        }
    } else {
        assert!((400..500).contains(&head.status), "{:?}", head.head);
    }
}

#[test]
fn cancelling_from_another_session_does_not_stop_a_call() {
    let srv = spawn_server(test_config());
    let a = initialize(srv.addr);
    let b = initialize(srv.addr);
    let (head, mut sse) = open_stream(srv.addr, &session_post(&a, &sleep_call(77, 200, Some("a"))));
    assert_sse_head(&head);
    sse.next_event().unwrap();
    let c = send(
        srv.addr,
        &session_post(
            &b,
            &notification("notifications/cancelled", json!({ "requestId": 77 })),
        ),
    );
    assert_eq!(c.status, 202);
    let last = sse.rest().pop().unwrap().json();
    assert_eq!(last["id"], 77);
    assert_eq!(
        last["result"]["content"][0]["text"], "slept 200 ms",
        "{last}"
    );
}

#[test]
fn keep_alive_and_pipelined_requests_around_deferred_and_streamed_calls() {
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let mut r = Reader::new(connect(srv.addr));
    // A deferred call (answered later from the tool pool) with a ping pipelined behind it.
    let mut raw = session_post(&sid, &sleep_call(1, 100, None));
    raw.extend_from_slice(&session_post(&sid, &rpc(2, "ping", json!({}))));
    r.send(&raw);
    let first = r.response();
    assert_eq!(first.json()["id"], 1, "responses in order");
    assert_eq!(first.json()["result"]["content"][0]["text"], "slept 100 ms");
    let second = r.response();
    assert_eq!(second.json()["id"], 2);
    // A streamed call, then another request on the same connection.
    r.send(&session_post(&sid, &sleep_call(3, 50, Some("k"))));
    let head = r.response_to("HEAD");
    assert_sse_head(&head);
    let mut sse = SseReader::new(r);
    assert_eq!(sse.rest().pop().unwrap().json()["id"], 3);
    let mut r = sse.r;
    r.send(&session_post(&sid, &rpc(4, "ping", json!({}))));
    assert_eq!(r.response().json()["id"], 4);
}

#[test]
fn stateless_progress_streams_plain_events_and_completes() {
    let srv = spawn_server(test_config());
    let mut msg = stateless_msg(
        1,
        "tools/call",
        json!({ "name": "sleep", "arguments": { "ms": 50 } }),
    );
    msg["params"]["_meta"]["progressToken"] = json!("s");
    let (head, mut sse) = open_stream(
        srv.addr,
        &stateless_post(Some(STATELESS), Some("tools/call"), Some("sleep"), &msg),
    );
    assert_sse_head(&head);
    let events = sse.rest();
    let msgs: Vec<Value> = events.iter().map(SseEvent::json).collect();
    assert!(
        events.iter().all(|e| e.id.is_none()),
        "no resumption ids in 2026-07-28: {events:?}"
    );
    assert_eq!(
        msgs.iter().filter(|v| is_progress(v)).count(),
        10,
        "{msgs:?}"
    );
    let last = msgs.last().unwrap();
    assert_eq!(last["id"], 1);
    assert_eq!(last["result"]["resultType"], "complete", "{last}");
    assert_eq!(last["result"]["content"][0]["text"], "slept 50 ms");
}

#[test]
fn idle_sessions_expire() {
    let mut cfg = test_config();
    cfg.mcp.session_idle_timeout = Duration::from_millis(150);
    let srv = spawn_server(cfg);
    let sid = initialize(srv.addr);
    request(srv.addr, &sid, 1, "ping", json!({}));
    // The subject of the test is time passing, not synchronisation.
    std::thread::sleep(Duration::from_millis(400));
    let resp = send(srv.addr, &session_post(&sid, &rpc(2, "ping", json!({}))));
    assert_eq!(resp.status, 404, "expired session: {:?}", resp.head);
}

#[test]
fn m16_a_closed_legacy_stream_frees_its_slot_and_its_endpoint() {
    // M16 caps *open* legacy streams, and a legacy session lives as long as
    // its stream: once the client has closed the stream, the slot is free
    // for a reconnect and the old endpoint is gone.
    let mut cfg = test_config();
    cfg.mcp.max_legacy_streams = 1;
    let srv = spawn_server(cfg);
    let (sse, path) = open_legacy(srv.addr);
    drop(sse);
    let ping = rpc(1, "ping", json!({}));
    // The server learns of the close asynchronously: allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    let (reopen, old) = loop {
        let mut r = Reader::new(connect(srv.addr));
        r.send(&http_request(
            "GET",
            "/mcp/sse",
            &[("Accept", "text/event-stream")],
            b"",
        ));
        let reopen = r.response_to("HEAD").status;
        drop(r);
        let old = send(srv.addr, &legacy_post(&path, &ping)).status;
        if (reopen == 200 && old == 404) || Instant::now() > deadline {
            break (reopen, old);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        reopen, 200,
        "reconnecting after the only legacy stream closed"
    );
    assert_eq!(old, 404, "POST to the endpoint of a closed legacy stream");
}

#[test]
fn deleting_a_session_stops_its_running_calls() {
    // One tool thread: the second call can only run once the first stops.
    let mut cfg = test_config();
    cfg.mcp.tool_threads = 1;
    let srv = spawn_server(cfg);
    let a = initialize(srv.addr);
    let b = initialize(srv.addr);
    let (head, mut sse) = open_stream(srv.addr, &session_post(&a, &sleep_call(1, 5000, Some("a"))));
    assert_sse_head(&head);
    sse.next_event().unwrap();
    let start = Instant::now();
    let resp = send(
        srv.addr,
        &http_request("DELETE", "/mcp", &[("Mcp-Session-Id", &a)], b""),
    );
    assert!((200..300).contains(&resp.status));
    let r = result(
        srv.addr,
        &b,
        "tools/call",
        json!({ "name": "sleep", "arguments": { "ms": 10 } }),
    );
    assert_eq!(r["content"][0]["text"], "slept 10 ms");
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(2000),
        "the deleted session's call kept running ({took:?})"
    );
    // Its stream has ended.
    sse.rest();
}

#[test]
fn stateless_closing_the_stream_cancels_the_call() {
    // One tool thread: the second call can only run once the first stops.
    let mut cfg = test_config();
    cfg.mcp.tool_threads = 1;
    let srv = spawn_server(cfg);
    let mut msg = stateless_msg(
        1,
        "tools/call",
        json!({ "name": "sleep", "arguments": { "ms": 3000 } }),
    );
    msg["params"]["_meta"]["progressToken"] = json!("x");
    let (head, mut sse) = open_stream(
        srv.addr,
        &stateless_post(Some(STATELESS), Some("tools/call"), Some("sleep"), &msg),
    );
    assert_sse_head(&head);
    assert!(is_progress(&sse.next_event().unwrap().json()));
    drop(sse);
    let start = Instant::now();
    let msg = stateless_msg(
        2,
        "tools/call",
        json!({ "name": "sleep", "arguments": { "ms": 10 } }),
    );
    let resp = send(
        srv.addr,
        &stateless_post(Some(STATELESS), Some("tools/call"), Some("sleep"), &msg),
    );
    assert_eq!(resp.json()["result"]["content"][0]["text"], "slept 10 ms");
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(1800),
        "the abandoned call kept running ({took:?})"
    );
}

#[test]
fn m14_cors_is_off_by_default() {
    let srv = spawn_server(test_config());
    let origin = format!("http://localhost:{}", srv.addr.port());
    let resp = send(
        srv.addr,
        &post_mcp(&[("Origin", &origin)], &to_body(&init_msg(VERSION))),
    );
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("access-control-allow-origin").is_none(),
        "{:?}",
        resp.head
    );
    let resp = send(
        srv.addr,
        &http_request(
            "OPTIONS",
            "/mcp",
            &[
                ("Origin", "http://evil.example.com"),
                ("Access-Control-Request-Method", "POST"),
            ],
            b"",
        ),
    );
    assert!(
        !(200..300).contains(&resp.status),
        "preflight: {:?}",
        resp.head
    );
    assert!(resp.header("access-control-allow-origin").is_none());
}

#[test]
fn head_on_the_stream_endpoints_opens_nothing() {
    // See: #13 (1). HEAD gets a GET's head, with no body, and opens no
    // legacy session or standalone stream.
    let mut cfg = test_config();
    cfg.mcp.max_legacy_streams = 1;
    let srv = spawn_server(cfg);
    let sid = initialize(srv.addr);
    let accept = ("Accept", "text/event-stream");
    let mut r = Reader::new(connect(srv.addr));
    for _ in 0..3 {
        r.send(&http_request("HEAD", "/mcp/sse", &[accept], b""));
        let head = r.response_to("HEAD");
        assert_eq!(head.status, 200, "{:?}", head.head);
        assert_eq!(head.header("content-type"), Some("text/event-stream"));
        r.send(&http_request(
            "HEAD",
            "/mcp",
            &[accept, ("Mcp-Session-Id", &sid)],
            b"",
        ));
        let head = r.response_to("HEAD");
        assert_eq!(head.status, 200, "{:?}", head.head);
    }
    r.send(&get("/json"));
    assert_eq!(r.response().status, 200);
    assert!(
        !r.poll_for(Duration::from_millis(200)),
        "{:?}",
        r.leftover()
    );
    // The one legacy slot and the session's one GET stream are still free.
    let (_legacy, _) = open_legacy(srv.addr);
    let (head, _stream) = open_stream(srv.addr, &get_mcp(&[("Mcp-Session-Id", &sid)]));
    assert_sse_head(&head);
}

// ---------------------------------------------------------------------------
// SECURITY.md M17: tool calls do not outlive their clients; the tool pool
// is shared fairly and its queue is bounded.

/// A stateless `tools/call` of `sleep` for `ms`, as raw request bytes.
fn stateless_sleep(id: i64, ms: u64, token: Option<&str>) -> Vec<u8> {
    let mut msg = stateless_msg(
        id,
        "tools/call",
        json!({ "name": "sleep", "arguments": { "ms": ms } }),
    );
    if let Some(t) = token {
        msg["params"]["_meta"]["progressToken"] = json!(t);
    }
    stateless_post(Some(STATELESS), Some("tools/call"), Some("sleep"), &msg)
}

/// A session call with a JSON-only `Accept`: its reply can only be plain JSON.
fn json_only_post(sid: &str, msg: &Value) -> Vec<u8> {
    post_mcp(
        &[
            ("Mcp-Session-Id", sid),
            ("MCP-Protocol-Version", VERSION),
            ("Accept", "application/json"),
        ],
        &to_body(msg),
    )
}

/// Sends `raw` and asserts the answer comes within `limit`; returns it.
#[track_caller]
fn answered_within(addr: SocketAddr, raw: &[u8], limit: Duration) -> RawResponse {
    let start = Instant::now();
    let mut r = Reader::new(connect(addr));
    r.send(raw);
    assert!(
        r.poll_for(limit),
        "no answer within {limit:?}: the tool pool is still held"
    );
    let resp = r.response();
    assert!(
        start.elapsed() < limit,
        "answered after {:?}",
        start.elapsed()
    );
    resp
}

/// Asserts a refusal for a full server: 503, `Retry-After`, and a
/// JSON-RPC -32005 error that names the bound (`reason`) and keeps the id.
#[track_caller]
fn assert_busy(resp: &RawResponse, id: i64, reason: &str) {
    assert_eq!(resp.status, 503, "{:?} {}", resp.head, resp.body_str());
    assert!(resp.header("retry-after").is_some(), "{:?}", resp.head);
    let v = resp.json();
    assert_eq!(v["id"], id, "{v}");
    assert_eq!(code(&v), -32005, "{v}");
    assert_eq!(v["error"]["data"]["reason"], reason, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(reason), "the message says why: {v}");
}

#[test]
fn m17_abandoned_stateless_calls_free_the_tool_pool() {
    // See: #13 (5). 40 calls of 60 s (more than the 32 tool threads) whose
    // clients leave after 1 s: another call still answers within 5 s.
    let srv = spawn_server(test_config());
    let mut clients = Vec::new();
    for i in 0..40 {
        let mut r = Reader::new(connect(srv.addr));
        // Half reply as plain JSON, half as an SSE stream (progress).
        let token = format!("t{i}");
        r.send(&stateless_sleep(i, 60_000, (i % 2 == 0).then_some(&token)));
        clients.push(r);
    }
    // The scenario's own timing: the clients give up after a second.
    std::thread::sleep(Duration::from_secs(1));
    drop(clients);
    let resp = answered_within(
        srv.addr,
        &stateless_sleep(99, 10, None),
        Duration::from_secs(5),
    );
    assert_eq!(resp.status, 200, "{:?}", resp.head);
    assert_eq!(resp.json()["result"]["content"][0]["text"], "slept 10 ms");
}

#[test]
fn m17_abandoned_session_calls_with_plain_json_replies_free_the_tool_pool() {
    // See: #13 (5). The session era: 40 calls of 60 s over five sessions,
    // answered as plain JSON, whose connections close after 1 s.
    let srv = spawn_server(test_config());
    let sessions: Vec<String> = (0..5).map(|_| initialize(srv.addr)).collect();
    let mut clients = Vec::new();
    for i in 0..40 {
        let mut r = Reader::new(connect(srv.addr));
        r.send(&json_only_post(
            &sessions[i % 5],
            &sleep_call(i as i64, 60_000, None),
        ));
        clients.push(r);
    }
    std::thread::sleep(Duration::from_secs(1));
    drop(clients);
    let other = initialize(srv.addr);
    let resp = answered_within(
        srv.addr,
        &json_only_post(&other, &sleep_call(7, 10, None)),
        Duration::from_secs(5),
    );
    assert_eq!(resp.json()["result"]["content"][0]["text"], "slept 10 ms");
    // The sessions themselves are fine.
    for s in &sessions {
        request(srv.addr, s, 8, "ping", json!({}));
    }
}

#[test]
fn m17_a_resumable_call_survives_its_connection_dropping() {
    // See: #13 (5). A 2025-11-25 call whose reply became an SSE stream with
    // event ids is not cancelled when its connection drops: the client may
    // come back with Last-Event-ID, and finds the whole result.
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let (head, mut sse) = open_stream(
        srv.addr,
        &session_post(&sid, &sleep_call(5, 500, Some("r"))),
    );
    assert_sse_head(&head);
    let priming = sse.next_event().unwrap();
    let (stream, _) = event_id(&priming);
    let first = sse.next_event().unwrap();
    assert!(is_progress(&first.json()), "{first:?}");
    let last = first.id.clone().unwrap();
    drop(sse);
    // Come back after the call would have ended.
    std::thread::sleep(Duration::from_millis(900));
    let (head, mut sse) = open_stream(
        srv.addr,
        &get_mcp(&[
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", VERSION),
            ("Last-Event-ID", &last),
        ]),
    );
    assert_sse_head(&head);
    let msgs: Vec<Value> = sse
        .rest()
        .into_iter()
        .filter(|e| !e.data.as_deref().unwrap_or_default().is_empty())
        .inspect(|e| assert_eq!(event_id(e).0, stream))
        .map(|e| e.json())
        .collect();
    assert_eq!(
        msgs.iter().filter(|v| is_progress(v)).count(),
        9,
        "{msgs:?}"
    );
    let last = msgs.last().unwrap();
    assert_eq!(last["id"], 5);
    assert_eq!(
        last["result"]["content"][0]["text"], "slept 500 ms",
        "{last}"
    );
}

#[test]
fn m17_a_session_gets_its_share_of_the_tool_pool_and_no_more() {
    // See: #13 (5). Over `mcp.max_calls_per_session` calls in progress, a
    // session's next call is refused at once (503, -32005); other sessions
    // still run theirs.
    let mut cfg = test_config();
    cfg.mcp.max_calls_per_session = 2;
    let srv = spawn_server(cfg);
    let a = initialize(srv.addr);
    let mut running = Vec::new();
    for id in 1..=2 {
        let (head, mut sse) = open_stream(
            srv.addr,
            &session_post(&a, &sleep_call(id, 3000, Some("p"))),
        );
        assert_sse_head(&head);
        sse.next_event().unwrap();
        running.push(sse);
    }
    let resp = answered_within(
        srv.addr,
        &session_post(&a, &sleep_call(3, 10, None)),
        Duration::from_secs(2),
    );
    assert_busy(&resp, 3, "max_calls_per_session");
    let b = initialize(srv.addr);
    let r = result(
        srv.addr,
        &b,
        "tools/call",
        json!({ "name": "sleep", "arguments": { "ms": 10 } }),
    );
    assert_eq!(r["content"][0]["text"], "slept 10 ms");
    // Calls that are not tool calls are not counted.
    request(srv.addr, &a, 4, "ping", json!({}));
    // Once one of its calls ends, the session may call again.
    let cancel = notification("notifications/cancelled", json!({ "requestId": 1 }));
    assert_eq!(send(srv.addr, &session_post(&a, &cancel)).status, 202);
    running.remove(0).rest();
    let r = result(
        srv.addr,
        &a,
        "tools/call",
        json!({ "name": "sleep", "arguments": { "ms": 10 } }),
    );
    assert_eq!(r["content"][0]["text"], "slept 10 ms");
}

#[test]
fn m17_a_full_call_queue_refuses_at_once() {
    // See: #13 (5). One tool thread, one waiting place: of two more calls,
    // one waits and the other is refused at once (503, -32005), not left
    // hanging.
    let mut cfg = test_config();
    cfg.mcp.tool_threads = 1;
    cfg.mcp.max_queued_calls = 1;
    let srv = spawn_server(cfg);
    let (head, mut busy) = open_stream(srv.addr, &stateless_sleep(1, 1500, Some("busy")));
    assert_sse_head(&head);
    busy.next_event().unwrap();
    let mut b = Reader::new(connect(srv.addr));
    b.send(&stateless_sleep(2, 10, None));
    let mut c = Reader::new(connect(srv.addr));
    c.send(&stateless_sleep(3, 10, None));
    let start = Instant::now();
    let (refused, id, mut waiting) = loop {
        if b.poll_for(Duration::from_millis(20)) {
            break (b.response(), 2, c);
        }
        if c.poll_for(Duration::from_millis(20)) {
            break (c.response(), 3, b);
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "neither was refused"
        );
    };
    assert_busy(&refused, id, "max_queued_calls");
    // The waiting call runs once the thread is free.
    let resp = waiting.response();
    assert_eq!(resp.json()["result"]["content"][0]["text"], "slept 10 ms");
    assert_eq!(busy.rest().len(), 10, "the running call finished normally");
}

// ---------------------------------------------------------------------------
// #13 (9): smaller MCP defects.

#[test]
fn a_tool_output_that_fails_its_output_schema_is_an_is_error_result() {
    // See: #13 (9a). 1.7e308 + 1.7e308 overflows to infinity, which JSON
    // cannot carry: the tool failed, and says so in an `isError` result,
    // in both eras; it is not a JSON-RPC error.
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let args = json!({ "name": "add", "arguments": { "a": 1.7e308, "b": 1.7e308 } });
    let r = result(srv.addr, &sid, "tools/call", args.clone());
    assert_eq!(r["isError"], true, "{r}");
    assert!(r.get("structuredContent").is_none(), "{r}");
    let text = r["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("output schema"), "{r}");
    let msg = stateless_msg(2, "tools/call", args);
    let resp = send(
        srv.addr,
        &stateless_post(Some(STATELESS), Some("tools/call"), Some("add"), &msg),
    );
    assert_eq!(resp.status, 200, "{:?}", resp.head);
    let v = resp.json();
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert_eq!(v["result"]["resultType"], "complete", "{v}");
}

#[test]
fn request_ids_beyond_f64_round_trip_exactly() {
    // See: #13 (9b). `1e400` and a 30-digit integer were -32700; ids are
    // echoed as the exact text they arrived as, on every reply path.
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    for id in ["1e400", "123456789012345678901234567890", "1.50"] {
        let bodies = [
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#),
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"nope"}}"#),
            // A deferred reply, from the tool pool.
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"sleep","arguments":{{"ms":1}}}}}}"#
            ),
        ];
        for body in &bodies {
            let resp = send(
                srv.addr,
                &post_mcp(
                    &[("Mcp-Session-Id", &sid), ("MCP-Protocol-Version", VERSION)],
                    body.as_bytes(),
                ),
            );
            assert_eq!(resp.status, 200, "{body}: {:?}", resp.head);
            let text = resp.body_str();
            assert!(
                text.starts_with(&format!(r#"{{"jsonrpc":"2.0","id":{id},"#)),
                "{body} → {text}"
            );
        }
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"x"}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"{STATELESS}","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
        );
        let resp = send(
            srv.addr,
            &post_mcp(
                &[
                    ("MCP-Protocol-Version", STATELESS),
                    ("Mcp-Method", "tools/call"),
                    ("Mcp-Name", "echo"),
                ],
                body.as_bytes(),
            ),
        );
        assert_eq!(resp.status, 200, "{:?} {}", resp.head, resp.body_str());
        assert!(
            resp.body_str()
                .starts_with(&format!(r#"{{"jsonrpc":"2.0","id":{id},"#)),
            "{}",
            resp.body_str()
        );
    }
}

#[test]
fn an_oversized_body_gets_a_json_rpc_error_body() {
    // See: #13 (9c). The http layer refuses a body over mcp.max_body_bytes
    // before the handler runs; its 413 is a JSON-RPC error (null id) like
    // every other MCP error, not plain text.
    let srv = spawn_server(test_config());
    let over = 4 * 1024 * 1024 + 1;
    for (what, raw) in [
        (
            "Content-Length",
            format!(
                "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                 Accept: {ACCEPT}\r\nContent-Length: {over}\r\n\r\n"
            ),
        ),
        (
            "chunked",
            format!(
                "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\n\r\n{over:x}\r\n{{"
            ),
        ),
        (
            "legacy",
            format!(
                "POST /mcp?sessionId=0123456789abcdef0123456789abcdef HTTP/1.1\r\n\
                 Host: localhost\r\nContent-Type: application/json\r\nContent-Length: {over}\r\n\r\n"
            ),
        ),
    ] {
        let mut r = Reader::new(connect(srv.addr));
        r.send(raw.as_bytes());
        let resp = r.expect_error_close(413, what);
        assert_json(&resp);
        let v = resp.json();
        assert_eq!(v["jsonrpc"], "2.0", "{what}: {v}");
        assert!(v["id"].is_null(), "{what}: {v}");
        assert_eq!(code(&v), -32600, "{what}: {v}");
        assert!(v["error"]["message"].is_string(), "{what}: {v}");
    }
    // Other routes keep their own error bodies.
    let mut r = Reader::new(connect(srv.addr));
    r.send(
        format!(
            "POST /json HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            5 << 20
        )
        .as_bytes(),
    );
    let resp = r.expect_error_close(413, "/json");
    assert!(
        resp.header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain"),
        "{:?}",
        resp.head
    );
}

#[test]
fn initialize_without_its_required_params_is_invalid_params() {
    // See: #13 (9d). `initialize` with no params (or without
    // protocolVersion, capabilities or clientInfo) is -32602, and opens no
    // session.
    let srv = spawn_server(test_config());
    let full = json!({
        "protocolVersion": VERSION,
        "capabilities": {},
        "clientInfo": { "name": "it", "version": "0" }
    });
    let mut bad = vec![json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize" })];
    for drop_key in ["protocolVersion", "capabilities", "clientInfo"] {
        let mut p = full.clone();
        p.as_object_mut().unwrap().remove(drop_key);
        bad.push(rpc(1, "initialize", p));
    }
    let mut p = full.clone();
    p["capabilities"] = json!("all");
    bad.push(rpc(1, "initialize", p));
    for msg in &bad {
        let resp = send(srv.addr, &post_mcp(&[], &to_body(msg)));
        assert_eq!(resp.status, 200, "{msg}: {:?}", resp.head);
        assert!(
            resp.header("mcp-session-id").is_none(),
            "{msg}: {:?}",
            resp.head
        );
        let v = resp.json();
        assert_eq!(v["id"], 1, "{v}");
        assert_eq!(code(&v), -32602, "{msg}: {v}");
    }
    assert_eq!(
        send(
            srv.addr,
            &post_mcp(&[], &to_body(&rpc(1, "initialize", full)))
        )
        .status,
        200
    );
    // The legacy transport answers on its stream.
    let (mut sse, path) = open_legacy(srv.addr);
    let resp = send(srv.addr, &legacy_post(&path, &bad[0]));
    assert_eq!(resp.status, 202, "{:?}", resp.head);
    assert_eq!(code(&legacy_message(&mut sse)), -32602);
}

#[test]
fn caching_hints_appear_only_in_stateless_results() {
    // See: #13 (9e). `ttlMs`/`cacheScope` (and `resultType`) belong to the
    // 2026-07-28 era; session-era results do not carry them.
    let srv = spawn_server(test_config());
    let sid = initialize(srv.addr);
    let calls = [
        ("tools/list", json!({}), None),
        ("resources/list", json!({}), None),
        ("resources/templates/list", json!({}), None),
        (
            "resources/read",
            json!({ "uri": "conduit://readme" }),
            Some("conduit://readme"),
        ),
        ("prompts/list", json!({}), None),
    ];
    for (method, params, name) in &calls {
        let r = result(srv.addr, &sid, method, params.clone());
        for key in ["ttlMs", "cacheScope", "resultType"] {
            assert!(r.get(key).is_none(), "session {method}: {key} in {r}");
        }
        let msg = stateless_msg(3, method, params.clone());
        let v = send(
            srv.addr,
            &stateless_post(Some(STATELESS), Some(method), *name, &msg),
        )
        .json();
        let r = &v["result"];
        assert!(r.get("ttlMs").is_some(), "stateless {method}: {v}");
        assert!(r.get("cacheScope").is_some(), "stateless {method}: {v}");
        assert_eq!(r["resultType"], "complete", "stateless {method}: {v}");
    }
}

#[cfg(feature = "fixtures")]
#[test]
fn an_expired_request_state_is_refused_like_a_tampered_one() {
    // See: #13 (9f). `requestState` carries a signed expiry
    // (`mcp.request_state_ttl_ms`); a retry with an expired one gets the
    // same -32602 as a tampered one, and a fresh one still works.
    let mut cfg = test_config();
    cfg.mcp.fixtures = Some("conformance".into());
    cfg.mcp.request_state_ttl = Duration::from_millis(300);
    let srv = spawn_server(cfg);
    let tool = "test_input_required_result_request_state";
    let call = |id: i64, extra: Value| {
        let mut params = json!({ "name": tool, "arguments": {} });
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        let mut msg = stateless_msg(id, "tools/call", params);
        msg["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
            json!({ "elicitation": {} });
        let resp = send(
            srv.addr,
            &stateless_post(Some(STATELESS), Some("tools/call"), Some(tool), &msg),
        );
        resp.json()
    };
    let answer = json!({ "confirm": { "action": "accept", "content": { "ok": true } } });
    let first_state = |id: i64| {
        let v = call(id, json!({}));
        assert_eq!(v["result"]["resultType"], "input_required", "{v}");
        v["result"]["requestState"].as_str().unwrap().to_string()
    };
    // Within its lifetime the state round-trips.
    let state = first_state(1);
    let v = call(
        2,
        json!({ "requestState": state, "inputResponses": answer }),
    );
    assert_eq!(
        v["result"]["content"][0]["text"], "Confirmed: state-ok",
        "{v}"
    );
    // Past it, the same retry is refused.
    let state = first_state(3);
    std::thread::sleep(Duration::from_millis(500));
    let expired = call(
        4,
        json!({ "requestState": state, "inputResponses": answer }),
    );
    assert_eq!(code(&expired), -32602, "{expired}");
    let mut tampered_state = state.clone();
    tampered_state.insert(0, 'x');
    let tampered = call(
        4,
        json!({ "requestState": tampered_state, "inputResponses": answer }),
    );
    assert_eq!(expired["error"], tampered["error"], "one error for both");
}

#[test]
fn m17_a_legacy_call_is_cancelled_when_its_stream_closes() {
    // See: #13 (5). On the 2024-11-05 HTTP+SSE transport the reply can only
    // travel on the session's stream, which cannot be resumed: once it
    // closes, the call is cancelled and its tool thread freed.
    let mut cfg = test_config();
    cfg.mcp.tool_threads = 1;
    let srv = spawn_server(cfg);
    let (mut sse, path) = open_legacy(srv.addr);
    send(srv.addr, &legacy_post(&path, &init_msg("2024-11-05")));
    legacy_message(&mut sse);
    let resp = send(
        srv.addr,
        &legacy_post(&path, &sleep_call(2, 60_000, Some("l"))),
    );
    assert_eq!(resp.status, 202);
    drop(sse);
    let sid = initialize(srv.addr);
    let resp = answered_within(
        srv.addr,
        &json_only_post(&sid, &sleep_call(3, 10, None)),
        Duration::from_secs(5),
    );
    assert_eq!(resp.json()["result"]["content"][0]["text"], "slept 10 ms");
}
