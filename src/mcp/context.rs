//! What a running tool may do besides compute: report progress, log, notice
//! cancellation, and ask the client for something (sampling, elicitation,
//! roots).

use super::jsonrpc::{self, RequestId};
use super::registry::ToolError;
use super::session::Session;
use crate::util::lock;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where messages related to one client request go (its SSE stream, the
/// stdio pipe, or a legacy SSE stream). Returns false once the peer is gone.
pub trait Outbox: Send + Sync {
    /// Sends one JSON-RPC message (already encoded).
    fn send(&self, json: String) -> bool;
    /// Ends the live connection carrying these messages, if the transport
    /// lets the client resume (SSE polling); later messages are buffered.
    fn close_stream(&self) {}
    /// False once the client's connection is known to be gone.
    fn is_open(&self) -> bool {
        true
    }
    /// True once the client of this call is gone and cannot come back for
    /// its reply (SECURITY.md M17): a stateless request's stream closed; in
    /// a session, the connection of a plain JSON reply (or of a stream
    /// without event ids) closed. A resumable stream is never abandoned: the
    /// client may reconnect with `Last-Event-ID`. The call is then cancelled.
    fn is_abandoned(&self) -> bool {
        false
    }
}

/// Log levels (RFC 5424 order, as MCP uses them).
pub const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// The index of a level name, if it is one.
pub fn level_index(name: &str) -> Option<u8> {
    LEVELS.iter().position(|l| *l == name).map(|i| i as u8)
}

/// How long a tool waits for the client to answer a request of ours.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Stateless era: the input responses a retry carried, and the requests the
/// tool made that had none (they become the `InputRequiredResult`).
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    pub(crate) responses: Map<String, Value>,
    pub(crate) missing: Mutex<Vec<(String, Value)>>,
    counter: Mutex<u32>,
    /// A valid `requestState` came with the request.
    pub(crate) state_verified: bool,
}

impl Inputs {
    pub(crate) fn new(responses: Map<String, Value>, state_verified: bool) -> Inputs {
        Inputs {
            responses,
            state_verified,
            ..Default::default()
        }
    }
}

/// A tool call's context.
pub struct ToolCtx {
    pub(crate) progress_token: Option<Value>,
    pub(crate) out: Option<Arc<dyn Outbox>>,
    pub(crate) cancelled: Arc<AtomicBool>,
    pub(crate) session: Option<Arc<Session>>,
    pub(crate) inputs: Option<Inputs>,
    /// Minimum level to send (stateless: from `_meta`; session: from `logging/setLevel`).
    pub(crate) min_level: u8,
    pub(crate) client_caps: Value,
}

impl std::fmt::Debug for ToolCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolCtx")
            .field("progress_token", &self.progress_token)
            .finish()
    }
}

impl ToolCtx {
    /// A context with no client attached (tests, in-process calls).
    pub fn detached() -> ToolCtx {
        ToolCtx {
            progress_token: None,
            out: None,
            cancelled: Arc::new(AtomicBool::new(false)),
            session: None,
            inputs: None,
            min_level: 0,
            client_caps: json!({}),
        }
    }

    fn notify(&self, method: &str, params: Value) -> bool {
        let sent = match &self.out {
            Some(o) => o.send(jsonrpc::encode_request(None, method, Some(&params))),
            None => false,
        };
        if !sent && self.inputs.is_some() {
            // 2026-07-28: the client closing the stream cancels the request.
            self.cancelled.store(true, Ordering::Release);
        }
        sent
    }

    /// Closes the live stream of this call without ending the call: the
    /// client reconnects with `Last-Event-ID` and receives the rest
    /// (MCP 2025-11-25 SSE polling).
    pub fn close_stream(&self) {
        if let Some(o) = &self.out {
            o.close_stream();
        }
    }

    /// Sends `notifications/progress` if the client asked for progress
    /// (`_meta.progressToken`). Progress should not decrease.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut p = json!({ "progressToken": token, "progress": progress });
        if let Some(t) = total {
            p["total"] = json!(t);
        }
        if let Some(m) = message {
            p["message"] = json!(m);
        }
        self.notify("notifications/progress", p);
    }

    /// Sends `notifications/message` at `level` if the client's level allows it.
    pub fn log(&self, level: &str, logger: Option<&str>, data: Value) {
        let Some(i) = level_index(level) else { return };
        let min = match &self.session {
            Some(s) => s.log_level(),
            None => self.min_level,
        };
        if i < min {
            return;
        }
        let mut p = json!({ "level": level, "data": data });
        if let Some(l) = logger {
            p["logger"] = json!(l);
        }
        self.notify("notifications/message", p);
    }

    /// True once the client cancelled this call (`notifications/cancelled`,
    /// DELETE of its session) or went away for good (its connection closed
    /// with no resumable stream): stop and return [`ToolError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        if self.cancelled.load(Ordering::Acquire) {
            return true;
        }
        if self.out.as_ref().is_some_and(|o| o.is_abandoned()) {
            self.cancelled.store(true, Ordering::Release);
            return true;
        }
        false
    }

    /// Sleeps up to `d`, waking early on cancellation. Returns false if cancelled.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.is_cancelled() {
                return false;
            }
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(10)));
        }
        !self.is_cancelled()
    }

    /// Whether the client declared a capability (e.g. `sampling`, `elicitation`, `roots`).
    pub fn client_has(&self, capability: &str) -> bool {
        self.client_caps.get(capability).is_some()
    }

    /// Fails unless the client declared `capability`: a -32021 error in the
    /// stateless era, an `isError` result in the session era.
    pub fn require_capability(&self, capability: &str) -> Result<(), ToolError> {
        if self.client_has(capability) {
            return Ok(());
        }
        if self.inputs.is_some() {
            return Err(ToolError::Protocol(super::error::Error::MissingCapability(
                capability.to_string(),
            )));
        }
        Err(ToolError::Failed(format!(
            "this tool needs the client's {capability} capability, which it did not declare"
        )))
    }

    /// Asks the client to sample an LLM (`sampling/createMessage`).
    pub fn sample(&self, params: Value) -> Result<Value, ToolError> {
        self.client_request("sampling/createMessage", params)
    }

    /// Asks the user for input through the client (`elicitation/create`).
    pub fn elicit(&self, params: Value) -> Result<Value, ToolError> {
        self.client_request("elicitation/create", params)
    }

    /// Asks the client for its roots (`roots/list`).
    pub fn list_roots(&self) -> Result<Value, ToolError> {
        self.client_request("roots/list", json!({}))
    }

    /// Stateless era: true if this retry carried a valid `requestState`
    /// (signed by us, untampered). Always false in the session era.
    pub fn has_request_state(&self) -> bool {
        self.inputs.as_ref().is_some_and(|i| i.state_verified)
    }

    /// Asks the client for one input under `key` (`method` is
    /// `elicitation/create`, `sampling/createMessage` or `roots/list`).
    ///
    /// Session era: sent to the client now, and its answer returned.
    /// Stateless era: returned from the retry's `inputResponses` if there,
    /// else the call ends with an `InputRequiredResult` asking for it.
    pub fn input(&self, key: &str, method: &str, params: Value) -> Result<Value, ToolError> {
        self.inputs_all(vec![(key, method, params)])
            .map(|mut v| v.pop().unwrap_or(Value::Null))
    }

    /// Like [`ToolCtx::input`] for several inputs at once: in the stateless
    /// era all missing ones are asked for in one `InputRequiredResult`.
    pub fn inputs_all(&self, requests: Vec<(&str, &str, Value)>) -> Result<Vec<Value>, ToolError> {
        let Some(inputs) = &self.inputs else {
            return requests
                .into_iter()
                .map(|(_, m, p)| self.client_request(m, p))
                .collect();
        };
        let mut out = Vec::with_capacity(requests.len());
        let mut missing = Vec::new();
        for (key, method, params) in requests {
            match inputs.responses.get(key) {
                Some(v) if !is_valid_response(method, v) => {
                    return Err(ToolError::Protocol(super::error::Error::InvalidParams(
                        format!("inputResponses.{key} is not a valid {method} result"),
                    )));
                }
                Some(v) => out.push(v.clone()),
                None => missing.push((
                    key.to_string(),
                    json!({ "method": method, "params": params }),
                )),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        lock(&inputs.missing).extend(missing);
        Err(ToolError::InputRequired)
    }

    /// Sends a request to the client and waits for its answer.
    ///
    /// Session era: the request goes over this call's stream and the answer
    /// comes back as a POST. Stateless era (2026-07-28): the call ends with
    /// an `InputRequiredResult` and the client retries with the answer, so a
    /// tool must be written to be re-run (ask first, act after).
    pub fn client_request(&self, method: &str, params: Value) -> Result<Value, ToolError> {
        if let Some(inputs) = &self.inputs {
            let mut n = lock(&inputs.counter);
            *n += 1;
            let key = format!("{}-{}", method.replace('/', "-"), *n);
            if let Some(v) = inputs.responses.get(&key) {
                return Ok(v.clone());
            }
            let mut missing = lock(&inputs.missing);
            missing.push((key, json!({ "method": method, "params": params })));
            return Err(ToolError::InputRequired);
        }
        let (Some(session), Some(out)) = (&self.session, &self.out) else {
            return Err(ToolError::Failed(format!(
                "{method}: no client connection to ask"
            )));
        };
        let (id, rx) = session.register_pending();
        if !out.send(jsonrpc::encode_request(Some(&id), method, Some(&params))) {
            session.forget_pending(&id);
            return Err(ToolError::Cancelled);
        }
        let deadline = Instant::now() + CLIENT_REQUEST_TIMEOUT;
        loop {
            if self.is_cancelled() {
                session.forget_pending(&id);
                return Err(ToolError::Cancelled);
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => {
                    return Err(ToolError::Failed(format!("{method} failed: {}", e.message)))
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => {
                    session.forget_pending(&id);
                    return Err(ToolError::Failed(format!(
                        "{method}: the client did not answer"
                    )));
                }
            }
        }
    }
}

/// Checks the shape of a client's answer to one of our requests (SEP-2322:
/// servers validate `inputResponses`).
fn is_valid_response(method: &str, v: &Value) -> bool {
    match method {
        "elicitation/create" => v.get("action").is_some_and(Value::is_string),
        "sampling/createMessage" => v
            .get("content")
            .is_some_and(|c| c.is_object() || c.is_array()),
        "roots/list" => v.get("roots").is_some_and(Value::is_array),
        _ => v.is_object(),
    }
}

/// Keys in `_meta` (2026-07-28).
pub mod meta {
    /// The protocol version a stateless request speaks.
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    /// The client's capabilities.
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    /// The log level for this request.
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
}

/// An id for a request of ours.
pub(crate) fn out_id(n: u64) -> RequestId {
    RequestId::String(format!("conduit-{n}"))
}
