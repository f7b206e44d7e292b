//! The 2024-11-05 HTTP+SSE transport: `GET /mcp/sse` opens a stream whose
//! first event names the URL to POST to; replies travel over the stream.

use super::super::context::Outbox;
use super::super::jsonrpc::{self, Message, Parsed, INVALID_REQUEST};
use super::super::server::{Deferred, Era, Outcome, Server};
use super::super::session::Session;
use super::stream::{Framing, StreamState};
use super::{check_origin, http_error};
use crate::http::sse::Event;
use crate::http::{Cx, Method, Reply, Request, Response};
use crate::util::lock;
use serde_json::json;
use std::sync::Arc;

/// `GET /mcp/sse`.
pub(crate) fn open(server: &Arc<Server>, req: &mut Request, cx: &mut Cx<'_>) -> Reply {
    // M16: the same Origin rule as Streamable HTTP.
    if let Some(r) = check_origin(&server.cfg, req) {
        return r.into();
    }
    if server.sessions.legacy_count() >= server.cfg.max_legacy_streams {
        return http_error(
            503,
            INVALID_REQUEST,
            "Service Unavailable: too many open SSE streams",
        )
        .into();
    }
    if req.method() == Method::Head {
        // RFC 9110 §9.3.2: the head a GET would get; no session is opened.
        return Reply::Sse(cx.sse().0);
    }
    let principal = req.principal().map(str::to_string);
    let session = match server.sessions.create(
        Session::new("2024-11-05", json!({}), serde_json::Value::Null, true)
            .with_principal(principal),
    ) {
        Ok(s) => s,
        Err(b) => return super::busy_error(b).into(),
    };
    let stream = StreamState::new(Framing::Legacy, 0);
    let (sse, tx) = cx.sse();
    stream.attach(tx, None, false);
    // The endpoint carries the unguessable session id (M16).
    let endpoint = format!("/mcp?sessionId={}", session.id.0);
    stream.send_event(&Event {
        event: Some("endpoint"),
        id: None,
        data: &endpoint,
        retry_ms: None,
    });
    session.set_standalone(Some(stream.clone()));
    lock(&session.transport).add(stream);
    Reply::Sse(sse)
}

/// `POST /mcp?sessionId=…`: answered 202; the JSON-RPC reply goes over the stream.
pub(crate) fn post(server: &Arc<Server>, sid: &str, req: &mut Request) -> Response {
    // M6: only the principal that opened the stream may post to it.
    let Some(session) = server
        .sessions
        .get(sid)
        .filter(|s| s.legacy && s.principal.as_deref() == req.principal())
    else {
        return http_error(404, INVALID_REQUEST, "Session not found");
    };
    if !session.has_live_standalone() {
        // M16: the stream is gone, so is the session; its replies would go nowhere.
        server.sessions.remove(sid);
        return http_error(
            404,
            INVALID_REQUEST,
            "Session not found: its SSE stream is closed",
        );
    }
    let msg = match jsonrpc::parse(req.body()) {
        Err(e) => return Response::json(400, jsonrpc::encode_error(None, &e)),
        Ok(Parsed::Single(Err(rej))) => {
            return Response::json(400, jsonrpc::encode_error(rej.id.as_ref(), &rej.error))
        }
        Ok(Parsed::Batch(_)) => {
            let e = jsonrpc::ErrorObject::new(INVALID_REQUEST, "batches are not supported");
            return Response::json(400, jsonrpc::encode_error(None, &e));
        }
        Ok(Parsed::Single(Ok(m))) => m,
    };
    if let Message::Request(r) = &msg {
        if r.method == "initialize" {
            session.notify(server.initialize_existing(&session, r));
            return Response::text(202, "Accepted");
        }
    }
    let era = Era::Session(Some(session.clone()));
    let s2 = session.clone();
    let outcome = server.handle(msg, &era, move || {
        let out: Arc<dyn Outbox> = Arc::new(SessionOut(s2.clone()));
        Deferred {
            interim: out,
            done: Box::new(move |j, _| {
                if !j.is_empty() {
                    s2.notify(j);
                }
            }),
        }
    });
    match outcome {
        Outcome::Reply(j) | Outcome::Initialized(_, j) | Outcome::Failed(_, j) => {
            session.notify(j);
        }
        Outcome::Pending | Outcome::Accepted => {}
    }
    Response::text(202, "Accepted")
}

/// Messages of a legacy session all travel on its one stream.
struct SessionOut(Arc<Session>);

impl Outbox for SessionOut {
    fn send(&self, json: String) -> bool {
        self.0.notify(json)
    }

    fn is_abandoned(&self) -> bool {
        // The one stream is gone, and the 2024-11-05 transport cannot resume it.
        !self.0.has_live_standalone()
    }
}
