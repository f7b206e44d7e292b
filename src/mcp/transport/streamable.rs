//! Streamable HTTP (`POST/GET/DELETE /mcp`), both eras on one endpoint.

use super::super::error::{Error, BUSY_RETRY_AFTER_SECS};
use super::super::jsonrpc::{self, Message, Parsed, RequestId, INVALID_REQUEST};
use super::super::server::{self, Deferred, Era, Outcome, Server, SESSION_VERSIONS};
use super::super::session::Session;
use super::stream::{parse_event_id, CallSink, Framing, StreamState};
use super::{check_origin, http_error, legacy_sse};
use crate::http::{Cx, Method, Reply, Request, Response};
use crate::util::lock;
use std::sync::Arc;

/// What the client's `Accept` allows: (JSON, SSE).
fn accepts(req: &Request) -> (bool, bool) {
    let Some(a) = req.header_str("accept") else {
        return (true, true);
    };
    let a = a.to_ascii_lowercase();
    let any = a.contains("*/*");
    (
        any || a.contains("application/json") || a.contains("application/*"),
        any || a.contains("text/event-stream"),
    )
}

fn json_reply(status: u16, body: String, session: Option<&str>) -> Reply {
    let mut r = Response::json(status, body);
    if let Some(s) = session {
        r = r.header("Mcp-Session-Id", s.to_string());
    }
    Reply::Response(r)
}

/// A JSON-RPC error reply; a busy server's says when to retry (RFC 9110 §10.2.3).
fn error_reply(status: u16, body: String, e: &Error) -> Reply {
    let mut r = Response::json(status, body);
    if matches!(e, Error::Busy(_)) {
        r = r.header("Retry-After", BUSY_RETRY_AFTER_SECS.to_string());
    }
    Reply::Response(r)
}

/// One message as a single-event SSE stream (for clients that accept only
/// SSE): head, event and end in one write.
fn sse_reply(cx: &mut Cx<'_>, body: String, session: Option<&str>) -> Reply {
    let (mut stream, tx) = cx.sse();
    let ev = crate::http::sse::Event {
        event: None,
        id: None,
        data: &body,
        retry_ms: None,
    };
    if stream.push(&ev).is_err() {
        return json_reply(500, String::new(), None);
    }
    let mut head = Response::new(200);
    if let Some(s) = session {
        head = head.header("Mcp-Session-Id", s.to_string());
    }
    let stream = stream.with_head(head).end();
    // Ended already: dropping the sender queues nothing.
    drop(tx);
    Reply::Sse(stream)
}

/// The HTTP status for a JSON-RPC error in a session-era reply: errors
/// travel as 200 responses, except that a full server says 503.
fn session_status(e: &Error) -> u16 {
    match e {
        Error::Busy(_) => 503,
        Error::Parse(_)
        | Error::InvalidRequest(_)
        | Error::MethodNotFound(_)
        | Error::InvalidParams(_)
        | Error::InvalidMeta(_)
        | Error::ResourceNotFound(_)
        | Error::HeaderMismatch(_)
        | Error::MissingCapability(_)
        | Error::UnsupportedVersion(_)
        | Error::Cancelled
        | Error::Internal(_) => 200,
    }
}

/// The HTTP status for a JSON-RPC error in a stateless (2026-07-28) reply (SEP-2575).
fn stateless_status(e: &Error) -> u16 {
    match e {
        Error::Busy(_) => 503,
        Error::MethodNotFound(_) => 404,
        Error::HeaderMismatch(_)
        | Error::UnsupportedVersion(_)
        | Error::InvalidRequest(_)
        | Error::Parse(_)
        | Error::InvalidMeta(_)
        | Error::MissingCapability(_) => 400,
        Error::InvalidParams(_)
        | Error::ResourceNotFound(_)
        | Error::Cancelled
        | Error::Internal(_) => 200,
    }
}

/// An HTTP error carrying a JSON-RPC error with the request's id (if known).
fn rpc_error(status: u16, id: Option<&RequestId>, code: i64, message: &str) -> Reply {
    Reply::Response(rpc_error_response(status, id, code, message))
}

fn rpc_error_response(status: u16, id: Option<&RequestId>, code: i64, message: &str) -> Response {
    Response::json(
        status,
        jsonrpc::encode_error(id, &jsonrpc::ErrorObject::new(code, message)),
    )
}

/// The session a Streamable HTTP request names (M5), with its
/// `MCP-Protocol-Version` checked (M7). Legacy sessions are not reachable
/// here: their id travels in a URL and is not a Streamable HTTP credential.
fn session_for(
    server: &Server,
    req: &Request,
    id: Option<&RequestId>,
) -> Result<Arc<Session>, Response> {
    let Some(sid) = req.header_str("mcp-session-id") else {
        return Err(rpc_error_response(
            400,
            id,
            INVALID_REQUEST,
            "Bad Request: Mcp-Session-Id header is required",
        ));
    };
    // M6: a session is usable only by the principal that opened it.
    let Some(session) = server
        .sessions
        .get(sid)
        .filter(|s| !s.legacy && s.principal.as_deref() == req.principal())
    else {
        return Err(rpc_error_response(
            404,
            id,
            INVALID_REQUEST,
            "Session not found",
        ));
    };
    if let Some(v) = req.header_str("mcp-protocol-version") {
        // M7: an invalid or unsupported version header is refused.
        if !SESSION_VERSIONS.contains(&v) {
            let msg = format!("Bad Request: unsupported MCP-Protocol-Version {v:?}");
            return Err(rpc_error_response(400, id, INVALID_REQUEST, &msg));
        }
    }
    Ok(session)
}

/// `POST /mcp`.
pub(crate) fn post(server: &Arc<Server>, req: &mut Request, cx: &mut Cx<'_>) -> Reply {
    if let Some(r) = check_origin(&server.cfg, req) {
        return r.into();
    }
    if let Some(sid) = req.query_param("sessionId") {
        let sid = sid.to_string();
        return legacy_sse::post(server, &sid, req).into();
    }
    let ct = req
        .header_str("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ct.starts_with("application/json") {
        return http_error(
            415,
            INVALID_REQUEST,
            "Unsupported Media Type: Content-Type must be application/json",
        )
        .into();
    }
    let (json_ok, sse_ok) = accepts(req);
    if !json_ok && !sse_ok {
        return http_error(
            406,
            INVALID_REQUEST,
            "Not Acceptable: accept application/json or text/event-stream",
        )
        .into();
    }
    let msg = match jsonrpc::parse(req.body()) {
        Err(e) => return json_reply(400, jsonrpc::encode_error(None, &e), None),
        Ok(Parsed::Batch(_)) => {
            // MCP 2025-06-18 removed batching (M8).
            return rpc_error(
                400,
                None,
                INVALID_REQUEST,
                "batches are not supported: send one JSON-RPC message per request",
            );
        }
        Ok(Parsed::Single(Err(rej))) => {
            return json_reply(
                400,
                jsonrpc::encode_error(rej.id.as_ref(), &rej.error),
                None,
            )
        }
        Ok(Parsed::Single(Ok(m))) => m,
    };
    let params = match &msg {
        Message::Request(r) => Some(&r.params),
        Message::Notification(n) => Some(&n.params),
        Message::Response(_) => None,
    };
    // The stateless era is chosen by `_meta`, or by a protocol version header
    // that no session speaks on a request without a session.
    let header_version = req.header_str("mcp-protocol-version");
    let stateless = params.is_some_and(server::has_stateless_meta)
        || (header_version.is_some_and(|v| !SESSION_VERSIONS.contains(&v))
            && req.header("mcp-session-id").is_none());
    if stateless {
        post_stateless(server, req, cx, msg, json_ok, sse_ok)
    } else {
        post_session(server, req, cx, msg, json_ok, sse_ok)
    }
}

fn post_session(
    server: &Arc<Server>,
    req: &Request,
    cx: &mut Cx<'_>,
    msg: Message,
    json_ok: bool,
    sse_ok: bool,
) -> Reply {
    let id = match &msg {
        Message::Request(r) => Some(r.id.clone()),
        Message::Notification(_) | Message::Response(_) => None,
    };
    if let Message::Request(r) = &msg {
        if r.method == "initialize" {
            return match server.initialize(r, false, req.principal().map(str::to_string)) {
                Ok((s, body)) if json_ok => json_reply(200, body, Some(&s.id.0)),
                Ok((s, body)) => sse_reply(cx, body, Some(&s.id.0)),
                Err(e) => {
                    let body = jsonrpc::encode_error(Some(&r.id), &e.to_object(false));
                    finish(Outcome::Failed(e, body), cx, json_ok, session_status)
                }
            };
        }
    }
    let session = match session_for(server, req, id.as_ref()) {
        Ok(s) => s,
        Err(r) => return Reply::Response(r),
    };
    let version = session.version.clone();
    let framing = if version.as_str() >= "2025-03-26" {
        Framing::Resumable
    } else {
        Framing::Plain
    };
    let priming = version.as_str() >= "2025-11-25";
    let replay = server.cfg.replay_events;
    let era = Era::Session(Some(session.clone()));
    let outcome = server.handle(msg, &era, || {
        let sink = CallSink::new(
            cx.responder(),
            Some(session),
            sse_ok,
            json_ok,
            framing,
            priming,
            replay,
        );
        deferred(sink, session_status)
    });
    finish(outcome, cx, json_ok, session_status)
}

/// A call's deferred reply through `sink`; `status_of` picks the HTTP status
/// of an error reply.
fn deferred(sink: Arc<CallSink>, status_of: fn(&Error) -> u16) -> Deferred {
    let s2 = sink.clone();
    Deferred {
        interim: sink,
        done: Box::new(move |j, e| s2.finish(j, e.as_ref().map_or(200, status_of))),
    }
}

fn finish(outcome: Outcome, cx: &mut Cx<'_>, json_ok: bool, status_of: fn(&Error) -> u16) -> Reply {
    match outcome {
        Outcome::Accepted => Reply::Response(Response::new(202)),
        Outcome::Pending => Reply::Later,
        Outcome::Reply(body) | Outcome::Initialized(_, body) if json_ok => {
            json_reply(200, body, None)
        }
        Outcome::Reply(body) | Outcome::Initialized(_, body) => sse_reply(cx, body, None),
        Outcome::Failed(e, body) => {
            let status = status_of(&e);
            if json_ok || status != 200 {
                error_reply(status, body, &e)
            } else {
                sse_reply(cx, body, None)
            }
        }
    }
}

fn post_stateless(
    server: &Arc<Server>,
    req: &Request,
    cx: &mut Cx<'_>,
    msg: Message,
    json_ok: bool,
    sse_ok: bool,
) -> Reply {
    let (id, params) = match &msg {
        Message::Request(r) => (Some(r.id.clone()), &r.params),
        Message::Notification(n) => (None, &n.params),
        Message::Response(_) => return Reply::Response(Response::new(202)),
    };
    let fail = |e: Error| {
        json_reply(
            stateless_status(&e),
            jsonrpc::encode_error(id.as_ref(), &e.to_object(true)),
            None,
        )
    };
    // SEP-2575 order: _meta present and complete, then headers match it, then the version.
    let mut st = match server::stateless_meta(params) {
        Ok(st) => st,
        Err(e) => return fail(e),
    };
    st.principal = req.principal().map(str::to_string);
    if let Err(e) = check_stateless_headers(req, &msg, &st)
        .and_then(|()| check_param_headers(server, req, &msg))
    {
        return fail(e);
    }
    if let Message::Request(r) = &msg {
        if r.method == "subscriptions/listen" && st.version == server::STATELESS_VERSION {
            return listen(server, r, cx);
        }
    }
    let era = Era::Stateless(st);
    let replay = server.cfg.replay_events;
    let outcome = server.handle(msg, &era, || {
        let sink = CallSink::new(
            cx.responder(),
            None,
            sse_ok,
            json_ok,
            Framing::Plain,
            false,
            replay,
        );
        deferred(sink, stateless_status)
    });
    finish(outcome, cx, json_ok, stateless_status)
}

/// `subscriptions/listen` (2026-07-28): one long SSE stream of the
/// notifications the client asked for.
fn listen(server: &Arc<Server>, r: &jsonrpc::Request, cx: &mut Cx<'_>) -> Reply {
    let (sse, tx) = cx.sse();
    server.listen(r, Arc::new(SseOut(tx)));
    Reply::Sse(sse)
}

/// An SSE stream as an [`Outbox`](super::super::Outbox).
struct SseOut(crate::http::SseSender);

impl super::super::Outbox for SseOut {
    fn send(&self, json: String) -> bool {
        self.0.send_data(&json).is_ok()
    }
    fn is_open(&self) -> bool {
        !self.0.is_closed()
    }
}

/// 2026-07-28: `MCP-Protocol-Version` must match `_meta`; `Mcp-Method` (and
/// `Mcp-Name` where the method names something) must match the body (M7).
#[doc(hidden)]
pub fn check_stateless_headers(
    req: &Request,
    msg: &Message,
    st: &server::Stateless,
) -> Result<(), Error> {
    match req.header_str("mcp-protocol-version") {
        Some(v) if v == st.version => {}
        Some(v) => {
            return Err(Error::HeaderMismatch(format!(
                "MCP-Protocol-Version header {v:?} does not match _meta protocol version {:?}",
                st.version
            )))
        }
        None => {
            return Err(Error::HeaderMismatch(
                "MCP-Protocol-Version header is required".into(),
            ))
        }
    }
    let (method, params) = match msg {
        Message::Request(r) => (r.method.as_str(), &r.params),
        Message::Notification(n) => (n.method.as_str(), &n.params),
        Message::Response(_) => return Ok(()),
    };
    match req.header_str("mcp-method") {
        Some(m) if m == method => {}
        Some(m) => {
            return Err(Error::HeaderMismatch(format!(
                "Mcp-Method header {m:?} does not match method {method:?}"
            )))
        }
        None => {
            return Err(Error::HeaderMismatch(
                "Mcp-Method header is required".into(),
            ))
        }
    }
    let name_key = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(k) = name_key {
        let want = params.get(k).and_then(|v| v.as_str()).unwrap_or("");
        match req.header_str("mcp-name") {
            Some(n) if n == want => {}
            Some(n) => {
                return Err(Error::HeaderMismatch(format!(
                    "Mcp-Name header {n:?} does not match {k} {want:?}"
                )))
            }
            None => return Err(Error::HeaderMismatch("Mcp-Name header is required".into())),
        }
    }
    Ok(())
}

/// SEP-2243: a `tools/call` argument whose schema names an `x-mcp-header`
/// must travel in `Mcp-Param-<name>` too (plain, or `=?base64?…?=`), equal
/// to the body's value; a missing, undecodable or different header is a
/// HeaderMismatch (400, -32020).
#[doc(hidden)]
pub fn check_param_headers(server: &Server, req: &Request, msg: &Message) -> Result<(), Error> {
    let Message::Request(r) = msg else {
        return Ok(());
    };
    if r.method != "tools/call" {
        return Ok(());
    }
    let Some(name) = r.params.get("name").and_then(|v| v.as_str()) else {
        return Ok(());
    };
    let snap = server.registry.snapshot();
    let Some(tool) = snap.tool(name) else {
        return Ok(());
    };
    let Some(props) = tool
        .def
        .get("inputSchema")
        .and_then(|s| s.get("properties"))
        .and_then(|p| p.as_object())
    else {
        return Ok(());
    };
    let args = r.params.get("arguments");
    for (prop, schema) in props {
        let Some(header) = schema.get("x-mcp-header").and_then(|h| h.as_str()) else {
            continue;
        };
        let body = args.and_then(|a| a.get(prop)).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let sent = req.header_str(&format!("mcp-param-{header}"));
        match (body, sent) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(Error::HeaderMismatch(format!(
                    "Mcp-Param-{header} header is required for argument {prop}"
                )))
            }
            (None, Some(_)) => {
                return Err(Error::HeaderMismatch(format!(
                    "Mcp-Param-{header} header names an argument the body lacks"
                )))
            }
            (Some(b), Some(h)) => {
                let decoded = decode_param(h).ok_or_else(|| {
                    Error::HeaderMismatch(format!("Mcp-Param-{header}: invalid Base64 value"))
                })?;
                if decoded != b {
                    return Err(Error::HeaderMismatch(format!(
                        "Mcp-Param-{header} header does not match argument {prop}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// An `Mcp-Param-*` value: `=?base64?<standard Base64, padded>?=` is
/// decoded (and must be valid UTF-8); anything else is taken literally.
#[doc(hidden)]
pub fn decode_param(v: &str) -> Option<String> {
    use base64::Engine;
    let Some(inner) = v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    else {
        return Some(v.to_string());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(inner)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// `GET /mcp`: the session's server-to-client stream, or a resumed stream
/// (`Last-Event-ID`).
pub(crate) fn get(server: &Arc<Server>, req: &mut Request, cx: &mut Cx<'_>) -> Reply {
    if let Some(r) = check_origin(&server.cfg, req) {
        return r.into();
    }
    let (_, sse_ok) = accepts(req);
    if !sse_ok {
        return http_error(
            406,
            INVALID_REQUEST,
            "Not Acceptable: GET /mcp serves text/event-stream",
        )
        .into();
    }
    let session = match session_for(server, req, None) {
        Ok(s) => s,
        Err(r) => return Reply::Response(r),
    };
    if req.method() == Method::Head {
        // RFC 9110 §9.3.2: the head a GET would get; no stream is opened.
        return Reply::Sse(cx.sse().0);
    }
    session.mark_used();
    let priming = session.version.as_str() >= "2025-11-25";
    if let Some((stream_id, seq)) = req.header_str("last-event-id").and_then(parse_event_id) {
        let found = lock(&session.transport).get(stream_id);
        if let Some(stream) = found {
            // M9: replay only that stream's events after the id.
            let (sse, tx) = cx.sse();
            stream.attach(tx, Some(seq), false);
            return Reply::Sse(sse);
        }
    }
    let stream = StreamState::new(Framing::Resumable, server.cfg.replay_events);
    let (sse, tx) = cx.sse();
    stream.attach(tx, None, priming);
    if !session.set_standalone_if_free(stream.clone()) {
        stream.finish();
        return http_error(
            409,
            INVALID_REQUEST,
            "Conflict: this session already has a GET stream",
        )
        .into();
    }
    lock(&session.transport).add(stream);
    Reply::Sse(sse)
}

/// `DELETE /mcp`: ends the session.
pub(crate) fn delete(server: &Arc<Server>, req: &mut Request) -> Response {
    if let Some(r) = check_origin(&server.cfg, req) {
        return r;
    }
    match session_for(server, req, None) {
        Ok(session) => {
            server.sessions.remove(&session.id.0);
            Response::new(200)
        }
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::decode_param;

    #[test]
    fn param_headers_decode_base64_or_stay_literal() {
        assert_eq!(
            decode_param("=?base64?SGVsbG8=?=").as_deref(),
            Some("Hello")
        );
        assert_eq!(
            decode_param("=?base64?SGVsbG8?=").as_deref(),
            None,
            "padding is required"
        );
        assert_eq!(decode_param("=?base64?SGVs!!!bG8=?=").as_deref(), None);
        assert_eq!(
            decode_param("SGVsbG8=").as_deref(),
            Some("SGVsbG8="),
            "no wrapper: literal"
        );
        assert_eq!(
            decode_param("=?base64?SGVsbG8=").as_deref(),
            Some("=?base64?SGVsbG8="),
            "no suffix: literal"
        );
    }
}
