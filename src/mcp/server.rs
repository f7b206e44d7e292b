//! The transport-agnostic MCP server: method table, both protocol eras.

use super::context::{level_index, meta, Inputs, Outbox, ToolCtx};
use super::error::Error;
use super::jsonrpc::{self, Message, Notification, Request, RequestId};
use super::pool::ToolPool;
use super::registry::{page_of, ListKind, Registry, Snapshot, ToolError, ToolResult};
use super::session::{Session, SessionStore};
use super::state::StateKey;
use super::McpConfig;
use crate::util::lock;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Session-era protocol versions we speak, oldest first.
pub const SESSION_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The newest session-era version: what an unknown `initialize` version gets.
pub const LATEST_SESSION_VERSION: &str = "2025-11-25";
/// The stateless protocol version.
pub const STATELESS_VERSION: &str = "2026-07-28";

/// How a message is being served.
#[derive(Debug, Clone)]
pub enum Era {
    /// Inside a session (after `initialize`), or before one exists (`initialize` itself).
    Session(Option<Arc<Session>>),
    /// A 2026-07-28 request: everything needed travels in `_meta`.
    Stateless(Stateless),
}

/// What a stateless request declared in `_meta`.
#[derive(Debug, Clone)]
pub struct Stateless {
    /// `io.modelcontextprotocol/protocolVersion`.
    pub version: String,
    /// `io.modelcontextprotocol/clientCapabilities`.
    pub client_caps: Value,
    /// Minimum log level index for this request.
    pub min_level: u8,
    /// The authenticated principal (with auth on): its calls share one
    /// `mcp.max_calls_per_session`. Set by the transport.
    pub principal: Option<String>,
}

impl Era {
    fn is_stateless(&self) -> bool {
        matches!(self, Era::Stateless(_))
    }

    /// Who a tool call counts against for `mcp.max_calls_per_session`: its
    /// session, or the principal of an authenticated stateless request.
    /// Anonymous stateless requests share nothing (each is cancelled as soon
    /// as its stream closes; a per-address share would throttle every
    /// client behind one proxy or on one machine together), and neither
    /// does stdio's one client.
    fn owner(&self) -> Option<String> {
        match self {
            Era::Session(s) => s
                .as_ref()
                .filter(|s| !s.is_sole_client())
                .map(|s| format!("session:{}", s.id.0)),
            Era::Stateless(st) => st.principal.as_ref().map(|p| format!("principal:{p}")),
        }
    }
}

/// True if the params carry a stateless `_meta` protocol version.
pub fn has_stateless_meta(params: &Map<String, Value>) -> bool {
    params
        .get("_meta")
        .and_then(|m| m.get(meta::PROTOCOL_VERSION))
        .is_some()
}

/// Reads and checks the stateless `_meta` of a request (SEP-2575):
/// `protocolVersion` and `clientCapabilities` are required.
pub fn stateless_meta(params: &Map<String, Value>) -> Result<Stateless, Error> {
    let m = params
        .get("_meta")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::InvalidMeta("_meta is required in the stateless protocol".into()))?;
    let version = m
        .get(meta::PROTOCOL_VERSION)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::InvalidMeta(format!("_meta.{} is required", meta::PROTOCOL_VERSION)))?
        .to_string();
    let client_caps = m
        .get(meta::CLIENT_CAPABILITIES)
        .filter(|c| c.is_object())
        .cloned()
        .ok_or_else(|| {
            Error::InvalidMeta(format!("_meta.{} is required", meta::CLIENT_CAPABILITIES))
        })?;
    // No logLevel: the client wants no log messages for this request.
    let min_level = m
        .get(meta::LOG_LEVEL)
        .and_then(Value::as_str)
        .and_then(level_index)
        .unwrap_or(u8::MAX);
    Ok(Stateless {
        version,
        client_caps,
        min_level,
        principal: None,
    })
}

/// Where the final response of a deferred call goes, and interim messages.
pub struct Deferred {
    /// Notifications and client requests sent while the call runs.
    pub interim: Arc<dyn Outbox>,
    /// Called once with the encoded final response, and the error if it is one
    /// (the transport may pick an HTTP status from it). An empty response
    /// with `Error::Cancelled` means the client cancelled: send nothing.
    pub done: Box<dyn FnOnce(String, Option<Error>) + Send>,
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deferred")
    }
}

/// What handling one message produced.
#[derive(Debug)]
pub enum Outcome {
    /// The encoded response, ready now.
    Reply(String),
    /// `initialize` succeeded: the new session and the encoded response.
    Initialized(Arc<Session>, String),
    /// The response will be delivered through the [`Deferred`] the caller gave.
    Pending,
    /// A notification or a response: nothing to answer.
    Accepted,
    /// A JSON-RPC error (encoded), with the error for the transport's status choice.
    Failed(Error, String),
}

/// A `subscriptions/listen` stream (2026-07-28) and what it asked for.
struct Listener {
    id: Value,
    tools: bool,
    prompts: bool,
    resources: bool,
    out: Arc<dyn Outbox>,
}

/// `_meta` key tagging notifications on a listen stream.
const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// The MCP server.
pub struct Server {
    /// Tools, resources and prompts.
    pub registry: Registry,
    /// Session-era sessions.
    pub sessions: SessionStore,
    pub(crate) cfg: McpConfig,
    pool: ToolPool,
    pub(crate) state_key: StateKey,
    listeners: std::sync::Mutex<Vec<Listener>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

fn ok(id: &RequestId, v: &Value) -> Outcome {
    Outcome::Reply(jsonrpc::encode_result(id, v))
}

fn str_param<'a>(p: &'a Map<String, Value>, k: &str) -> Result<&'a str, Error> {
    p.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::InvalidParams(format!("missing string parameter: {k}")))
}

impl Server {
    /// A server with an empty registry.
    pub fn new(cfg: McpConfig) -> Arc<Server> {
        let sessions = SessionStore::new(
            cfg.max_sessions,
            cfg.session_idle_timeout,
            cfg.unused_session_timeout,
        )
        .with_max_per_principal(cfg.max_sessions_per_principal);
        let pool = ToolPool::new(
            cfg.tool_threads,
            cfg.max_queued_calls,
            cfg.calls_per_session(),
        );
        let state_key = match &cfg.state_secret {
            Some(secret) => StateKey::from_secret(secret.as_bytes()),
            None => StateKey::random(),
        }
        .with_ttl(cfg.request_state_ttl);
        let s = Arc::new(Server {
            registry: Registry::default(),
            sessions,
            cfg,
            pool,
            state_key,
            listeners: std::sync::Mutex::new(Vec::new()),
        });
        // Every change to the registry (a model's tools added when it loads,
        // removed when it is unloaded, fixtures' dynamic tools) reaches
        // every client with a stream for it: one place, so no code path
        // that changes a list can forget to say so.
        let weak = Arc::downgrade(&s);
        s.registry.on_change(move |kind| {
            if let Some(s) = weak.upgrade() {
                s.list_changed(kind);
            }
        });
        let weak = Arc::downgrade(&s);
        // Idle sessions are reaped once a second; the thread ends with the server.
        let _ = std::thread::Builder::new()
            .name("conduit-mcp-sweeper".into())
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                match weak.upgrade() {
                    Some(s) => s.sessions.sweep(),
                    None => return,
                }
            });
        s
    }

    fn capabilities(&self) -> Value {
        json!({
            "tools": { "listChanged": true },
            "resources": { "subscribe": true, "listChanged": true },
            "prompts": { "listChanged": true },
            "logging": {},
            "completions": {},
        })
    }

    fn server_info(&self) -> Value {
        json!({ "name": self.cfg.server_name, "title": "Conduit", "version": env!("CARGO_PKG_VERSION") })
    }

    /// Tells every client that a list changed: each session with a stream
    /// for messages not tied to a request (stdio, a Streamable HTTP GET
    /// stream, a legacy SSE stream; without one it is dropped, as MCP
    /// allows) and each 2026-07-28 `subscriptions/listen` stream that asked
    /// for this list. Stateless requests have no other stream to carry it.
    /// Registry changes call this themselves (see [`Server::new`]); call it
    /// for changes the registry cannot see.
    pub fn list_changed(&self, kind: ListKind) {
        let method = match kind {
            ListKind::Tools => "notifications/tools/list_changed",
            ListKind::Resources => "notifications/resources/list_changed",
            ListKind::Prompts => "notifications/prompts/list_changed",
        };
        let msg = jsonrpc::encode_request(None, method, None);
        for s in self.sessions.all() {
            s.notify(msg.clone());
        }
        let mut listeners = lock(&self.listeners);
        listeners.retain(|l| {
            let wanted = match kind {
                ListKind::Tools => l.tools,
                ListKind::Prompts => l.prompts,
                ListKind::Resources => l.resources,
            };
            if !wanted {
                return l.out.is_open();
            }
            let params = json!({ "_meta": { SUBSCRIPTION_ID: l.id } });
            l.out
                .send(jsonrpc::encode_request(None, method, Some(&params)))
        });
    }

    /// `subscriptions/listen` (2026-07-28): acknowledges on `out`, then sends
    /// the list-changed notifications the request's `notifications` filter
    /// names, each tagged with the subscription id.
    pub fn listen(&self, r: &Request, out: Arc<dyn Outbox>) {
        let filter = r.params.get("notifications");
        let flag = |k: &str| {
            filter
                .and_then(|f| f.get(k))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        // The subscription is named by the listen request's own id.
        let id = r.id.to_value();
        let ack = json!({ "_meta": { SUBSCRIPTION_ID: id } });
        if !out.send(jsonrpc::encode_request(
            None,
            "notifications/subscriptions/acknowledged",
            Some(&ack),
        )) {
            return;
        }
        let l = Listener {
            id,
            tools: flag("toolsListChanged"),
            prompts: flag("promptsListChanged"),
            resources: flag("resourcesListChanged"),
            out,
        };
        lock(&self.listeners).push(l);
    }

    /// Tells subscribed sessions that a resource changed.
    pub fn resource_updated(&self, uri: &str) {
        let msg = jsonrpc::encode_request(
            None,
            "notifications/resources/updated",
            Some(&json!({ "uri": uri })),
        );
        for s in self.sessions.all() {
            let subscribed = lock(&s.subscriptions).contains(uri);
            if subscribed {
                s.notify(msg.clone());
            }
        }
    }

    /// Handles one message. `deferred` is used only if the outcome is
    /// [`Outcome::Pending`]; `legacy` marks sessions created over HTTP+SSE.
    pub fn handle(
        self: &Arc<Self>,
        msg: Message,
        era: &Era,
        deferred: impl FnOnce() -> Deferred,
    ) -> Outcome {
        match msg {
            Message::Request(r) => {
                let id = r.id.clone();
                let stateless = era.is_stateless();
                match self.request(r, era, deferred) {
                    Ok(o) => o,
                    Err(e) => {
                        let enc = jsonrpc::encode_error(Some(&id), &e.to_object(stateless));
                        Outcome::Failed(e, enc)
                    }
                }
            }
            Message::Notification(n) => {
                self.notification(n, era);
                Outcome::Accepted
            }
            Message::Response(resp) => {
                if let Era::Session(Some(s)) = era {
                    if !s.deliver(&resp.id, resp.outcome) {
                        tracing::debug!(id = %resp.id, "response to no pending request");
                    }
                }
                Outcome::Accepted
            }
        }
    }

    fn notification(&self, n: Notification, era: &Era) {
        let Era::Session(Some(s)) = era else { return };
        match n.method.as_str() {
            "notifications/initialized" => s.initialized.store(true, Ordering::Release),
            "notifications/cancelled" => {
                if let Some(id) = n.params.get("requestId").and_then(RequestId::from_value) {
                    s.cancel(&id);
                }
            }
            // roots/list_changed, progress from the client…: nothing to do.
            _ => {}
        }
    }

    fn negotiate(r: &Request) -> &'static str {
        let asked = r
            .params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(LATEST_SESSION_VERSION);
        SESSION_VERSIONS
            .iter()
            .find(|v| **v == asked)
            .copied()
            .unwrap_or(LATEST_SESSION_VERSION)
    }

    fn initialize_result(&self, r: &Request, version: &str) -> String {
        let mut result = json!({
            "protocolVersion": version,
            "capabilities": self.capabilities(),
            "serverInfo": self.server_info(),
        });
        if let Some(i) = &self.cfg.instructions {
            result["instructions"] = json!(i);
        }
        jsonrpc::encode_result(&r.id, &result)
    }

    /// `initialize`: creates a session and returns it with the encoded result.
    /// `principal` (with auth on) binds the session to whoever opened it (M6).
    pub fn initialize(
        &self,
        r: &Request,
        legacy: bool,
        principal: Option<String>,
    ) -> Result<(Arc<Session>, String), Error> {
        check_initialize(r)?;
        let version = Self::negotiate(r);
        let (caps, info) = client_of(r);
        let session = self
            .sessions
            .create(Session::new(version, caps, info, legacy).with_principal(principal))
            .map_err(Error::Busy)?;
        let enc = self.initialize_result(r, version);
        Ok((session, enc))
    }

    /// `initialize` on a legacy HTTP+SSE session, which exists from the
    /// moment its stream opened: the encoded result, or the encoded error.
    pub fn initialize_existing(&self, session: &Session, r: &Request) -> String {
        if let Err(e) = check_initialize(r) {
            return jsonrpc::encode_error(Some(&r.id), &e.to_object(false));
        }
        let (caps, info) = client_of(r);
        session.set_client(caps, info);
        self.initialize_result(r, Self::negotiate(r))
    }

    fn request(
        self: &Arc<Self>,
        r: Request,
        era: &Era,
        deferred: impl FnOnce() -> Deferred,
    ) -> Result<Outcome, Error> {
        let stateless = match era {
            Era::Stateless(s) => Some(s),
            Era::Session(_) => None,
        };
        if let Some(st) = stateless {
            if st.version != STATELESS_VERSION {
                return Err(Error::UnsupportedVersion(st.version.clone()));
            }
        }
        if let Era::Session(Some(s)) = era {
            s.mark_used();
        }
        let snap = self.registry.snapshot();
        let id = &r.id;
        // Results of the stateless era say what kind of result they are.
        let done = |mut v: Value| -> Result<Outcome, Error> {
            if stateless.is_some() {
                if let Value::Object(o) = &mut v {
                    o.insert("resultType".into(), json!("complete"));
                }
            }
            Ok(ok(id, &v))
        };
        // 2026-07-28 caching hints: stateless results only.
        let cached = |v: Value| {
            if stateless.is_some() {
                with_cache_hints(v)
            } else {
                v
            }
        };
        match r.method.as_str() {
            "initialize" => match era {
                Era::Session(_) => {
                    let (s, enc) = self.initialize(&r, false, None)?;
                    Ok(Outcome::Initialized(s, enc))
                }
                Era::Stateless(_) => Err(Error::MethodNotFound(
                    "initialize (stateless: use server/discover)".into(),
                )),
            },
            "ping" if stateless.is_none() => Ok(ok(id, &json!({}))),
            "server/discover" => {
                let mut v = json!({
                    "supportedVersions": [STATELESS_VERSION],
                    "capabilities": self.capabilities(),
                    "serverInfo": self.server_info(),
                    "_meta": { "io.modelcontextprotocol/serverInfo": self.server_info() },
                });
                if let Some(i) = &self.cfg.instructions {
                    v["instructions"] = json!(i);
                }
                done(v)
            }
            "tools/list" => {
                let page = page_of(r.params.get("cursor"))?;
                let v = snap.tools_page(page)?;
                if stateless.is_none() {
                    // PERF: the page was rendered when the registry changed.
                    return Ok(ok(id, v));
                }
                done(with_cache_hints(v.clone()))
            }
            "resources/list" => done(cached(
                snap.resources_page(page_of(r.params.get("cursor"))?)?,
            )),
            "resources/templates/list" => done(cached(
                snap.templates_page(page_of(r.params.get("cursor"))?)?,
            )),
            "resources/read" => {
                let uri = str_param(&r.params, "uri")?;
                let contents: Vec<Value> = snap.read(uri)?.iter().map(|c| c.to_value()).collect();
                done(cached(json!({ "contents": contents })))
            }
            "resources/subscribe" | "resources/unsubscribe" if stateless.is_none() => {
                let uri = str_param(&r.params, "uri")?;
                if let Era::Session(Some(s)) = era {
                    let mut subs = lock(&s.subscriptions);
                    if r.method == "resources/subscribe" {
                        subs.insert(uri.to_string());
                    } else {
                        subs.remove(uri);
                    }
                }
                Ok(ok(id, &json!({})))
            }
            "prompts/list" => done(cached(snap.prompts_page(page_of(r.params.get("cursor"))?)?)),
            "prompts/get" => {
                let name = str_param(&r.params, "name")?.to_string();
                let empty = Map::new();
                let args = r
                    .params
                    .get("arguments")
                    .and_then(Value::as_object)
                    .unwrap_or(&empty);
                let cx = self.context(&r, era, &name, None)?;
                match snap.get_prompt(&name, args, &cx) {
                    Ok(v) => done(v),
                    Err(ToolError::InputRequired) => {
                        Ok(Outcome::Reply(self.input_required(id, &name, &cx)?))
                    }
                    Err(ToolError::Protocol(e)) => Err(e),
                    Err(ToolError::Failed(m)) => Err(Error::InvalidParams(m)),
                    Err(ToolError::Cancelled) => Err(Error::Cancelled),
                }
            }
            "completion/complete" => {
                let reference = r
                    .params
                    .get("ref")
                    .ok_or_else(|| Error::InvalidParams("missing ref".into()))?;
                let arg = r
                    .params
                    .get("argument")
                    .ok_or_else(|| Error::InvalidParams("missing argument".into()))?;
                let arg_name = arg.get("name").and_then(Value::as_str).unwrap_or("");
                let value = arg.get("value").and_then(Value::as_str).unwrap_or("");
                let values = match reference.get("type").and_then(Value::as_str) {
                    Some("ref/prompt") => {
                        let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
                        snap.complete_prompt(name, arg_name, value)?
                    }
                    Some("ref/resource") => Vec::new(),
                    _ => {
                        return Err(Error::InvalidParams(
                            "ref.type must be ref/prompt or ref/resource".into(),
                        ))
                    }
                };
                let total = values.len();
                let values: Vec<String> = values.into_iter().take(100).collect();
                done(
                    json!({ "completion": { "values": values, "total": total, "hasMore": total > 100 } }),
                )
            }
            "logging/setLevel" if stateless.is_none() => {
                let level = str_param(&r.params, "level")?;
                let i = level_index(level)
                    .ok_or_else(|| Error::InvalidParams(format!("unknown log level: {level}")))?;
                if let Era::Session(Some(s)) = era {
                    s.set_log_level(i);
                }
                Ok(ok(id, &json!({})))
            }
            "tools/call" => self.call_tool(r, &snap, era, deferred),
            other => Err(Error::MethodNotFound(other.to_string())),
        }
    }

    fn call_tool(
        self: &Arc<Self>,
        r: Request,
        snap: &Snapshot,
        era: &Era,
        deferred: impl FnOnce() -> Deferred,
    ) -> Result<Outcome, Error> {
        let name = str_param(&r.params, "name")?.to_string();
        let tool = snap
            .tool(&name)
            .cloned()
            .ok_or_else(|| Error::InvalidParams(format!("Unknown tool: {name}")))?;
        let args = match r.params.get("arguments") {
            None | Some(Value::Null) => json!({}),
            Some(v) => v.clone(),
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut cx = self.context(&r, era, &name, Some(cancelled.clone()))?;
        if tool.inline {
            let res = tool.call(args, &cx);
            return self
                .finish_call(&r.id, &name, &cx, res, era)
                .map(Outcome::Reply);
        }
        // Refused at once if the pool or this session's share is full
        // (SECURITY.md M17): the transport answers with the error.
        let permit = self.pool.admit(era.owner()).map_err(Error::Busy)?;
        let d = deferred();
        cx.out = Some(d.interim.clone());
        if let Some(s) = &cx.session {
            s.start_call(&r.id, cancelled.clone());
        }
        let server = self.clone();
        let era = era.clone();
        let id = r.id.clone();
        let out = d.interim.clone();
        // SECURITY.md M17: a waiting call whose client went away never runs.
        let abandoned: super::pool::Abandoned =
            Arc::new(move || cancelled.load(Ordering::Acquire) || out.is_abandoned());
        let job: super::pool::Job = Box::new(move |skip| {
            let res = if skip {
                Err(ToolError::Cancelled)
            } else {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tool.call(args, &cx)))
                    .unwrap_or_else(|_| Err(ToolError::Failed(format!("tool {name} panicked"))))
            };
            if let Some(s) = &cx.session {
                s.end_call(&id);
            }
            match server.finish_call(&id, &name, &cx, res, &era) {
                Ok(enc) => (d.done)(enc, None),
                // MCP cancellation: a cancelled request gets no response.
                Err(Error::Cancelled) => (d.done)(String::new(), Some(Error::Cancelled)),
                Err(e) => {
                    let enc = jsonrpc::encode_error(Some(&id), &e.to_object(era.is_stateless()));
                    (d.done)(enc, Some(e));
                }
            }
        });
        permit.submit(abandoned, job);
        Ok(Outcome::Pending)
    }

    /// The context for a tool call or prompt: progress token, session or
    /// stateless inputs (verified `requestState` + `inputResponses`).
    fn context(
        &self,
        r: &Request,
        era: &Era,
        name: &str,
        cancelled: Option<Arc<AtomicBool>>,
    ) -> Result<ToolCtx, Error> {
        let progress_token = r
            .params
            .get("_meta")
            .and_then(|m| m.get("progressToken"))
            .cloned();
        let (session, inputs, min_level, client_caps) = match era {
            Era::Session(s) => {
                let caps = s
                    .as_ref()
                    .map(|s| s.client_caps())
                    .unwrap_or_else(|| json!({}));
                (s.clone(), None, 0, caps)
            }
            Era::Stateless(st) => {
                let (responses, verified) = self.state_key.check_retry(&r.params, name)?;
                (
                    None,
                    Some(Inputs::new(responses, verified)),
                    st.min_level,
                    st.client_caps.clone(),
                )
            }
        };
        Ok(ToolCtx {
            progress_token,
            out: None,
            cancelled: cancelled.unwrap_or_default(),
            session,
            inputs,
            min_level,
            client_caps,
        })
    }

    /// The encoded `InputRequiredResult` for what the context found missing.
    fn input_required(&self, id: &RequestId, name: &str, cx: &ToolCtx) -> Result<String, Error> {
        let Some(inputs) = &cx.inputs else {
            return Err(Error::Internal(
                "input required outside the stateless era".into(),
            ));
        };
        let missing = lock(&inputs.missing).clone();
        let mut requests = Map::new();
        for (k, req) in missing {
            requests.insert(k, req);
        }
        let state = self.state_key.issue(name, &inputs.responses);
        let v = json!({ "resultType": "input_required", "inputRequests": requests, "requestState": state });
        Ok(jsonrpc::encode_result(id, &v))
    }

    /// Turns a tool's outcome into the encoded response.
    fn finish_call(
        &self,
        id: &RequestId,
        name: &str,
        cx: &ToolCtx,
        res: Result<ToolResult, ToolError>,
        era: &Era,
    ) -> Result<String, Error> {
        let mut v = match res {
            Ok(r) => r.to_value(),
            Err(ToolError::Failed(msg)) => ToolResult::error(msg).to_value(),
            Err(ToolError::Cancelled) => return Err(Error::Cancelled),
            Err(ToolError::Protocol(e)) => return Err(e),
            Err(ToolError::InputRequired) => return self.input_required(id, name, cx),
        };
        if era.is_stateless() {
            if let Value::Object(o) = &mut v {
                o.insert("resultType".into(), json!("complete"));
            }
        }
        Ok(jsonrpc::encode_result(id, &v))
    }
}

/// `initialize` params must carry what the schema requires
/// (`InitializeRequestParams`): `protocolVersion`, `capabilities` and
/// `clientInfo`; without them it is -32602, not a session on guesses.
fn check_initialize(r: &Request) -> Result<(), Error> {
    let p = &r.params;
    let missing = |what: &str| {
        Err(Error::InvalidParams(format!(
            "initialize: params.{what} is required"
        )))
    };
    if !p.get("protocolVersion").is_some_and(Value::is_string) {
        return missing("protocolVersion (a string)");
    }
    if !p.get("capabilities").is_some_and(Value::is_object) {
        return missing("capabilities (an object)");
    }
    if !p.get("clientInfo").is_some_and(Value::is_object) {
        return missing("clientInfo (an object)");
    }
    Ok(())
}

/// An `initialize` request's client capabilities and `clientInfo`.
fn client_of(r: &Request) -> (Value, Value) {
    let caps = r
        .params
        .get("capabilities")
        .cloned()
        .unwrap_or_else(|| json!({}));
    (
        caps,
        r.params.get("clientInfo").cloned().unwrap_or(Value::Null),
    )
}

/// 2026-07-28 caching hints on list and read results.
fn with_cache_hints(mut v: Value) -> Value {
    if let Value::Object(o) = &mut v {
        o.entry("ttlMs").or_insert(json!(0));
        o.entry("cacheScope").or_insert(json!("private"));
    }
    v
}
