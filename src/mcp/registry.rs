//! Tools, resources and prompts, and the registry that serves them.
//!
//! The registry is copy-on-write: readers take a cheap snapshot (`Arc`), a
//! change swaps in a new table and then tells the change hook which list
//! changed (the server sends `notifications/*/list_changed` from it). Each
//! snapshot pre-renders its `tools/list` pages, so listing tools costs no
//! serialization.

use super::context::ToolCtx;
use super::error::Error;
use crate::util::{read, write};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// What a tool returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolResult {
    /// Content blocks (`{"type":"text","text":…}`, images, audio, resources…).
    pub content: Vec<Value>,
    /// Structured output, checked against the tool's output schema.
    pub structured: Option<Value>,
    /// The tool failed; the content explains why (a result, not a protocol error).
    pub is_error: bool,
}

impl ToolResult {
    /// One text block.
    pub fn text(s: impl Into<String>) -> ToolResult {
        ToolResult {
            content: vec![content::text(s)],
            ..Default::default()
        }
    }

    /// Content blocks.
    pub fn content(content: Vec<Value>) -> ToolResult {
        ToolResult {
            content,
            ..Default::default()
        }
    }

    /// Structured output, with its JSON text as the content too (as the spec
    /// recommends for clients that ignore `structuredContent`).
    pub fn structured(v: Value) -> ToolResult {
        let text = v.to_string();
        ToolResult {
            content: vec![content::text(text)],
            structured: Some(v),
            is_error: false,
        }
    }

    /// A failed call whose text tells the model what went wrong.
    pub fn error(s: impl Into<String>) -> ToolResult {
        ToolResult {
            content: vec![content::text(s)],
            structured: None,
            is_error: true,
        }
    }

    pub(crate) fn to_value(&self) -> Value {
        let mut o = Map::new();
        o.insert("content".into(), Value::Array(self.content.clone()));
        if let Some(s) = &self.structured {
            o.insert("structuredContent".into(), s.clone());
        }
        if self.is_error {
            o.insert("isError".into(), Value::Bool(true));
        }
        Value::Object(o)
    }
}

/// Builders for content blocks.
pub mod content {
    use serde_json::{json, Value};

    /// `{"type":"text","text":…}`
    pub fn text(s: impl Into<String>) -> Value {
        json!({ "type": "text", "text": s.into() })
    }
    /// An image, `data` already base64.
    pub fn image(data_b64: impl Into<String>, mime: &str) -> Value {
        json!({ "type": "image", "data": data_b64.into(), "mimeType": mime })
    }
    /// Audio, `data` already base64.
    pub fn audio(data_b64: impl Into<String>, mime: &str) -> Value {
        json!({ "type": "audio", "data": data_b64.into(), "mimeType": mime })
    }
    /// An embedded text resource.
    pub fn resource_text(uri: &str, mime: &str, text: impl Into<String>) -> Value {
        json!({ "type": "resource", "resource": { "uri": uri, "mimeType": mime, "text": text.into() } })
    }
}

/// Why a tool stopped without a result.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolError {
    /// The tool failed: becomes an `isError` result with this text.
    Failed(String),
    /// The client cancelled the call.
    Cancelled,
    /// Stateless era: the tool needs input from the client first
    /// (answered with an `InputRequiredResult`). Carries nothing: the
    /// context records what was asked.
    InputRequired,
    /// A protocol failure: becomes a JSON-RPC error.
    Protocol(Error),
}

impl From<Error> for ToolError {
    fn from(e: Error) -> Self {
        ToolError::Protocol(e)
    }
}

type ToolFn = dyn Fn(Value, &ToolCtx) -> Result<ToolResult, ToolError> + Send + Sync;

/// A tool: its definition, compiled argument validator and handler.
pub struct Tool {
    pub(crate) name: String,
    pub(crate) def: Value,
    validator: jsonschema::Validator,
    output_validator: Option<jsonschema::Validator>,
    pub(crate) inline: bool,
    handler: Arc<ToolFn>,
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name)
            .field("inline", &self.inline)
            .finish()
    }
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, Error> {
    // Draft 2020-12 unless the schema names another ($schema) — MCP 2025-11-25 default.
    let mut opts = jsonschema::options();
    if schema.get("$schema").is_none() {
        opts = opts.with_draft(jsonschema::Draft::Draft202012);
    }
    opts.build(schema)
        .map_err(|e| Error::Internal(format!("invalid JSON Schema: {e}")))
}

/// Tool names: `[A-Za-z0-9_.-]{1,128}` (MCP 2025-11-25).
pub fn is_valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl Tool {
    /// A tool taking JSON arguments that must match `input_schema`.
    pub fn new(
        name: &str,
        description: &str,
        input_schema: Value,
        handler: impl Fn(Value, &ToolCtx) -> Result<ToolResult, ToolError> + Send + Sync + 'static,
    ) -> Result<Tool, Error> {
        if !is_valid_tool_name(name) {
            return Err(Error::Internal(format!("invalid tool name {name:?}")));
        }
        let validator = compile(&input_schema)?;
        let def = json!({ "name": name, "description": description, "inputSchema": input_schema });
        Ok(Tool {
            name: name.to_string(),
            def,
            validator,
            output_validator: None,
            inline: false,
            handler: Arc::new(handler),
        })
    }

    /// A tool whose arguments are the Rust type `A`; the input schema is
    /// derived from `A` with schemars (draft 2020-12).
    pub fn typed<A, F>(name: &str, description: &str, handler: F) -> Result<Tool, Error>
    where
        A: schemars::JsonSchema + serde::de::DeserializeOwned,
        F: Fn(A, &ToolCtx) -> Result<ToolResult, ToolError> + Send + Sync + 'static,
    {
        let schema = serde_json::to_value(schemars::schema_for!(A))
            .map_err(|e| Error::Internal(e.to_string()))?;
        Tool::new(name, description, schema, move |args, cx| {
            let a: A = serde_json::from_value(args)
                .map_err(|e| ToolError::Failed(format!("invalid arguments: {e}")))?;
            handler(a, cx)
        })
    }

    /// Declares an output schema: results must carry matching `structuredContent`.
    pub fn with_output_schema(mut self, schema: Value) -> Result<Tool, Error> {
        self.output_validator = Some(compile(&schema)?);
        if let Value::Object(o) = &mut self.def {
            o.insert("outputSchema".into(), schema);
        }
        Ok(self)
    }

    /// Sets a human-readable title.
    pub fn with_title(mut self, title: &str) -> Tool {
        if let Value::Object(o) = &mut self.def {
            o.insert("title".into(), Value::String(title.into()));
        }
        self
    }

    /// Sets `annotations` (readOnlyHint, destructiveHint, …).
    pub fn with_annotations(mut self, annotations: Value) -> Tool {
        if let Value::Object(o) = &mut self.def {
            o.insert("annotations".into(), annotations);
        }
        self
    }

    /// Marks the tool cheap enough to run on the I/O loop (no thread hop):
    /// it must not block, and gets no progress, logging or client requests.
    pub fn inline(mut self) -> Tool {
        self.inline = true;
        self
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Validates `args`, runs the handler and checks structured output.
    pub(crate) fn call(&self, args: Value, cx: &ToolCtx) -> Result<ToolResult, ToolError> {
        let errors: Vec<String> = self
            .validator
            .iter_errors(&args)
            .take(5)
            .map(|e| e.to_string())
            .collect();
        if !errors.is_empty() {
            // MCP 2025-11-25: input validation failures are tool results the model can read.
            return Ok(ToolResult::error(format!(
                "Invalid arguments for tool {}: {}",
                self.name,
                errors.join("; ")
            )));
        }
        let r = (self.handler)(args, cx)?;
        if let (Some(v), false) = (&self.output_validator, r.is_error) {
            // A tool's bad output is the tool's failure, told to the model as
            // an `isError` result, never a JSON-RPC error (MCP: errors in
            // tool results). Non-finite numbers reach here as `null`, since
            // JSON has no Infinity or NaN.
            let why = match &r.structured {
                None => "no structured content".to_string(),
                Some(s) => v
                    .iter_errors(s)
                    .take(5)
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            if !why.is_empty() {
                return Ok(ToolResult::error(format!(
                    "tool {} produced output that does not match its output schema: {why}",
                    self.name
                )));
            }
        }
        Ok(r)
    }
}

/// One item of a resource's contents.
#[derive(Debug, Clone, PartialEq)]
pub enum Contents {
    /// Text.
    Text {
        /// The URI read.
        uri: String,
        /// MIME type.
        mime: String,
        /// The text.
        text: String,
    },
    /// Binary data, base64.
    Blob {
        /// The URI read.
        uri: String,
        /// MIME type.
        mime: String,
        /// Base64 data.
        blob: String,
    },
}

impl Contents {
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Contents::Text { uri, mime, text } => {
                json!({ "uri": uri, "mimeType": mime, "text": text })
            }
            Contents::Blob { uri, mime, blob } => {
                json!({ "uri": uri, "mimeType": mime, "blob": blob })
            }
        }
    }
}

type ReadFn = dyn Fn(&str, &HashMap<String, String>) -> Result<Vec<Contents>, Error> + Send + Sync;

/// A static resource (`uri`) or a template (`uri_template` with `{var}`s).
pub struct Resource {
    pub(crate) def: Value,
    pub(crate) uri: String,
    pub(crate) template: bool,
    read: Arc<ReadFn>,
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resource").field("uri", &self.uri).finish()
    }
}

impl Resource {
    /// A resource at a fixed URI.
    pub fn new(
        uri: &str,
        name: &str,
        description: &str,
        mime: &str,
        read: impl Fn(&str) -> Result<Vec<Contents>, Error> + Send + Sync + 'static,
    ) -> Resource {
        let def = json!({ "uri": uri, "name": name, "description": description, "mimeType": mime });
        Resource {
            def,
            uri: uri.into(),
            template: false,
            read: Arc::new(move |u, _| read(u)),
        }
    }

    /// A resource template (RFC 6570 level 1: `{var}` matches one path segment).
    pub fn template(
        uri_template: &str,
        name: &str,
        description: &str,
        mime: &str,
        read: impl Fn(&str, &HashMap<String, String>) -> Result<Vec<Contents>, Error>
            + Send
            + Sync
            + 'static,
    ) -> Resource {
        let def = json!({ "uriTemplate": uri_template, "name": name, "description": description, "mimeType": mime });
        Resource {
            def,
            uri: uri_template.into(),
            template: true,
            read: Arc::new(read),
        }
    }

    /// Matches `uri` against this template, returning its variables.
    fn match_template(&self, uri: &str) -> Option<HashMap<String, String>> {
        let mut vars = HashMap::new();
        let mut rest = uri;
        let mut pat = self.uri.as_str();
        while !pat.is_empty() {
            match pat.find('{') {
                None => return (rest == pat).then_some(vars),
                Some(open) => {
                    let lit = pat.get(..open)?;
                    rest = rest.strip_prefix(lit)?;
                    let close = pat.get(open..)?.find('}')? + open;
                    let name = pat.get(open + 1..close)?;
                    pat = pat.get(close + 1..)?;
                    let next_lit_end = pat.find('{').unwrap_or(pat.len());
                    let next_lit = pat.get(..next_lit_end)?;
                    let end = if next_lit.is_empty() {
                        rest.find('/').unwrap_or(rest.len())
                    } else {
                        rest.find(next_lit)?
                    };
                    let value = rest.get(..end)?;
                    if value.is_empty() || value.contains('/') {
                        return None;
                    }
                    vars.insert(name.to_string(), value.to_string());
                    rest = rest.get(end..)?;
                }
            }
        }
        rest.is_empty().then_some(vars)
    }
}

type PromptFn = dyn Fn(&Map<String, Value>, &ToolCtx) -> Result<Value, ToolError> + Send + Sync;
type CompleteFn = dyn Fn(&str, &str) -> Vec<String> + Send + Sync;

/// A prompt template.
pub struct Prompt {
    pub(crate) name: String,
    pub(crate) def: Value,
    required: Vec<String>,
    get: Arc<PromptFn>,
    complete: Option<Arc<CompleteFn>>,
}

impl std::fmt::Debug for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompt").field("name", &self.name).finish()
    }
}

impl Prompt {
    /// A prompt; `arguments` are `(name, description, required)`; `get`
    /// returns the `prompts/get` result (`{"messages": [...]}`).
    pub fn new(
        name: &str,
        description: &str,
        arguments: &[(&str, &str, bool)],
        get: impl Fn(&Map<String, Value>) -> Result<Value, Error> + Send + Sync + 'static,
    ) -> Prompt {
        let args: Vec<Value> = arguments
            .iter()
            .map(|(n, d, r)| json!({ "name": n, "description": d, "required": r }))
            .collect();
        let def = json!({ "name": name, "description": description, "arguments": args });
        let required = arguments
            .iter()
            .filter(|a| a.2)
            .map(|a| a.0.to_string())
            .collect();
        Prompt {
            name: name.into(),
            def,
            required,
            get: Arc::new(move |a, _| get(a).map_err(ToolError::Protocol)),
            complete: None,
        }
    }

    /// A prompt whose `get` may ask the client for input first (through
    /// the context, like a tool; stateless era: an `InputRequiredResult`).
    pub fn with_inputs(
        name: &str,
        description: &str,
        arguments: &[(&str, &str, bool)],
        get: impl Fn(&Map<String, Value>, &ToolCtx) -> Result<Value, ToolError> + Send + Sync + 'static,
    ) -> Prompt {
        let mut p = Prompt::new(name, description, arguments, |_| Ok(Value::Null));
        p.get = Arc::new(get);
        p
    }

    /// Offers completions for an argument: `f(argument_name, partial_value)`.
    pub fn with_completion(
        mut self,
        f: impl Fn(&str, &str) -> Vec<String> + Send + Sync + 'static,
    ) -> Prompt {
        self.complete = Some(Arc::new(f));
        self
    }
}

/// A consistent view of everything registered.
#[derive(Debug, Default)]
pub struct Snapshot {
    tools: Vec<Arc<Tool>>,
    tool_index: HashMap<String, usize>,
    /// Pre-rendered `tools/list` results, one per page.
    tool_pages: Vec<Value>,
    resources: Vec<Arc<Resource>>,
    prompts: Vec<Arc<Prompt>>,
}

/// Items per `tools/list`, `resources/list`… page.
pub const PAGE_SIZE: usize = 100;

fn cursor_for(page: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("page:{page}"))
}

/// Decodes a pagination cursor; an invalid one is -32602 (MCP pagination).
pub fn page_of(cursor: Option<&Value>) -> Result<usize, Error> {
    use base64::Engine;
    let Some(c) = cursor else { return Ok(0) };
    let bad = || Error::InvalidParams("invalid cursor".into());
    let s = c.as_str().ok_or_else(bad)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    text.strip_prefix("page:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)
}

fn paginate(defs: Vec<Value>, key: &str) -> Vec<Value> {
    let pages: Vec<Vec<Value>> = defs.chunks(PAGE_SIZE).map(|c| c.to_vec()).collect();
    let n = pages.len().max(1);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut o = Map::new();
        o.insert(
            key.into(),
            Value::Array(pages.get(i).cloned().unwrap_or_default()),
        );
        if i + 1 < n {
            o.insert("nextCursor".into(), Value::String(cursor_for(i + 1)));
        }
        out.push(Value::Object(o));
    }
    out
}

impl Snapshot {
    fn build(
        tools: Vec<Arc<Tool>>,
        resources: Vec<Arc<Resource>>,
        prompts: Vec<Arc<Prompt>>,
    ) -> Snapshot {
        let tool_index = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let tool_pages = paginate(tools.iter().map(|t| t.def.clone()).collect(), "tools");
        Snapshot {
            tools,
            tool_index,
            tool_pages,
            resources,
            prompts,
        }
    }

    /// A tool by name.
    pub fn tool(&self, name: &str) -> Option<&Arc<Tool>> {
        self.tool_index.get(name).and_then(|&i| self.tools.get(i))
    }

    /// The `tools/list` result for page `page`.
    pub fn tools_page(&self, page: usize) -> Result<&Value, Error> {
        self.tool_pages
            .get(page)
            .ok_or_else(|| Error::InvalidParams("invalid cursor".into()))
    }

    /// The `resources/list` result for a page.
    pub fn resources_page(&self, page: usize) -> Result<Value, Error> {
        let defs = self
            .resources
            .iter()
            .filter(|r| !r.template)
            .map(|r| r.def.clone())
            .collect();
        paginate(defs, "resources")
            .get(page)
            .cloned()
            .ok_or_else(|| Error::InvalidParams("invalid cursor".into()))
    }

    /// The `resources/templates/list` result for a page.
    pub fn templates_page(&self, page: usize) -> Result<Value, Error> {
        let defs = self
            .resources
            .iter()
            .filter(|r| r.template)
            .map(|r| r.def.clone())
            .collect();
        paginate(defs, "resourceTemplates")
            .get(page)
            .cloned()
            .ok_or_else(|| Error::InvalidParams("invalid cursor".into()))
    }

    /// The `prompts/list` result for a page.
    pub fn prompts_page(&self, page: usize) -> Result<Value, Error> {
        let defs = self.prompts.iter().map(|p| p.def.clone()).collect();
        paginate(defs, "prompts")
            .get(page)
            .cloned()
            .ok_or_else(|| Error::InvalidParams("invalid cursor".into()))
    }

    /// Reads a resource by URI: static resources first, then templates.
    pub fn read(&self, uri: &str) -> Result<Vec<Contents>, Error> {
        if let Some(r) = self.resources.iter().find(|r| !r.template && r.uri == uri) {
            return (r.read)(uri, &HashMap::new());
        }
        for r in self.resources.iter().filter(|r| r.template) {
            if let Some(vars) = r.match_template(uri) {
                return (r.read)(uri, &vars);
            }
        }
        Err(Error::ResourceNotFound(uri.to_string()))
    }

    /// True if `uri` names a resource (static or via a template).
    pub fn has_resource(&self, uri: &str) -> bool {
        self.resources.iter().any(|r| {
            if r.template {
                r.match_template(uri).is_some()
            } else {
                r.uri == uri
            }
        })
    }

    /// Gets a prompt, checking required arguments.
    pub fn get_prompt(
        &self,
        name: &str,
        args: &Map<String, Value>,
        cx: &ToolCtx,
    ) -> Result<Value, ToolError> {
        let p = self
            .prompts
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::InvalidParams(format!("unknown prompt: {name}")))?;
        if let Some(missing) = p.required.iter().find(|r| !args.contains_key(r.as_str())) {
            return Err(ToolError::Protocol(Error::InvalidParams(format!(
                "missing required argument: {missing}"
            ))));
        }
        (p.get)(args, cx)
    }

    /// Completion values for a prompt argument.
    pub fn complete_prompt(
        &self,
        name: &str,
        arg: &str,
        value: &str,
    ) -> Result<Vec<String>, Error> {
        let p = self
            .prompts
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::InvalidParams(format!("unknown prompt: {name}")))?;
        Ok(p.complete
            .as_ref()
            .map(|f| f(arg, value))
            .unwrap_or_default())
    }
}

type ChangeFn = dyn Fn(ListKind) + Send + Sync;

/// The live registry. Cloning shares it (and its change hook).
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Arc<Snapshot>>>,
    on_change: Arc<RwLock<Option<Arc<ChangeFn>>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("tools", &self.snapshot().tools.len())
            .finish()
    }
}

/// Which list changed (for `notifications/*/list_changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// tools
    Tools,
    /// resources
    Resources,
    /// prompts
    Prompts,
}

impl Registry {
    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        read(&self.inner).clone()
    }

    /// Calls `f` after every change, with the list that changed (once per
    /// change, after the new snapshot is in place, so a client that lists
    /// on hearing of it sees the change). Replaces an earlier hook.
    pub fn on_change(&self, f: impl Fn(ListKind) + Send + Sync + 'static) {
        let f: Arc<ChangeFn> = Arc::new(f);
        *write(&self.on_change) = Some(f);
    }

    /// Applies `f` to copies of the lists; if it reports a change, swaps
    /// in the new snapshot and then calls the change hook for `kind`
    /// (outside the lock: the hook may take a snapshot).
    fn update(
        &self,
        kind: ListKind,
        f: impl FnOnce(&mut Vec<Arc<Tool>>, &mut Vec<Arc<Resource>>, &mut Vec<Arc<Prompt>>) -> bool,
    ) -> bool {
        {
            let mut g = write(&self.inner);
            let (mut t, mut r, mut p) = (g.tools.clone(), g.resources.clone(), g.prompts.clone());
            if !f(&mut t, &mut r, &mut p) {
                return false;
            }
            *g = Arc::new(Snapshot::build(t, r, p));
        }
        let hook = read(&self.on_change).clone();
        if let Some(hook) = hook {
            hook(kind);
        }
        true
    }

    /// Adds (or replaces, by name) a tool.
    pub fn add_tool(&self, tool: Tool) {
        self.replace_tools(&[], vec![tool]);
    }

    /// Removes the tools named in `remove` and adds (or replaces, by name)
    /// those in `add`, as one change: one snapshot, one notification.
    /// Returns whether anything changed.
    pub fn replace_tools(&self, remove: &[String], add: Vec<Tool>) -> bool {
        self.update(ListKind::Tools, |t, _, _| {
            let before = t.len();
            t.retain(|x| !remove.contains(&x.name) && !add.iter().any(|a| a.name == x.name));
            let removed = t.len() != before;
            let added = !add.is_empty();
            t.extend(add.into_iter().map(Arc::new));
            removed || added
        })
    }

    /// Removes a tool; returns whether it existed.
    pub fn remove_tool(&self, name: &str) -> bool {
        self.replace_tools(&[name.to_string()], Vec::new())
    }

    /// Adds (or replaces, by URI) a resource or template.
    pub fn add_resource(&self, res: Resource) {
        self.update(ListKind::Resources, |_, r, _| {
            r.retain(|x| x.uri != res.uri);
            r.push(Arc::new(res));
            true
        });
    }

    /// Removes a prompt; returns whether it existed.
    pub fn remove_prompt(&self, name: &str) -> bool {
        self.update(ListKind::Prompts, |_, _, p| {
            let before = p.len();
            p.retain(|x| x.name != name);
            p.len() != before
        })
    }

    /// Adds (or replaces, by name) a prompt.
    pub fn add_prompt(&self, prompt: Prompt) {
        self.update(ListKind::Prompts, |_, _, p| {
            p.retain(|x| x.name != prompt.name);
            p.push(Arc::new(prompt));
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_one_segment_per_variable() {
        let r = Resource::template(
            "test://template/{id}/data",
            "t",
            "d",
            "text/plain",
            |_, _| Ok(vec![]),
        );
        assert_eq!(
            r.match_template("test://template/123/data").unwrap()["id"],
            "123"
        );
        assert!(r.match_template("test://template//data").is_none());
        assert!(r.match_template("test://template/1/2/data").is_none());
        assert!(r.match_template("test://template/123/datax").is_none());
        let r = Resource::template("file:///{path}", "t", "d", "text/plain", |_, _| Ok(vec![]));
        assert_eq!(r.match_template("file:///a.txt").unwrap()["path"], "a.txt");
    }

    #[test]
    fn output_that_fails_its_schema_is_an_is_error_result() {
        let schema = json!({ "type": "object", "properties": { "n": { "type": "number" } }, "required": ["n"] });
        let tool = |out: Option<Value>| {
            Tool::new("t", "d", json!({ "type": "object" }), move |_, _| {
                Ok(match &out {
                    Some(v) => ToolResult::structured(v.clone()),
                    None => ToolResult::text("no structure"),
                })
            })
            .and_then(|t| t.with_output_schema(schema.clone()))
            .unwrap()
        };
        let cx = ToolCtx::detached();
        let ok = tool(Some(json!({ "n": 1 }))).call(json!({}), &cx).unwrap();
        assert!(!ok.is_error);
        // JSON has no Infinity: serde_json turns it into null.
        for out in [Some(json!({ "n": f64::INFINITY })), Some(json!({})), None] {
            let r = tool(out.clone()).call(json!({}), &cx).unwrap();
            assert!(r.is_error, "{out:?}");
            assert!(r.structured.is_none());
        }
    }

    #[test]
    fn tool_names_follow_the_2025_11_25_rule() {
        assert!(is_valid_tool_name("get_weather.v2-beta"));
        assert!(!is_valid_tool_name(""));
        assert!(!is_valid_tool_name("has space"));
        assert!(!is_valid_tool_name(&"a".repeat(129)));
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_invalid_params() {
        assert_eq!(page_of(Some(&Value::String(cursor_for(3)))).unwrap(), 3);
        assert!(matches!(
            page_of(Some(&json!("???"))),
            Err(Error::InvalidParams(_))
        ));
        assert!(matches!(
            page_of(Some(&json!(5))),
            Err(Error::InvalidParams(_))
        ));
    }

    #[test]
    fn tools_list_is_paginated_in_stable_order() {
        let reg = Registry::default();
        for i in 0..250 {
            reg.add_tool(
                Tool::new(
                    &format!("t{i:03}"),
                    "d",
                    json!({"type":"object"}),
                    |_, _| Ok(ToolResult::text("x")),
                )
                .unwrap(),
            );
        }
        let s = reg.snapshot();
        let p0 = s.tools_page(0).unwrap();
        assert_eq!(p0["tools"].as_array().unwrap().len(), 100);
        assert_eq!(p0["tools"][0]["name"], "t000");
        let c = p0["nextCursor"].clone();
        let p1 = s.tools_page(page_of(Some(&c)).unwrap()).unwrap();
        assert_eq!(p1["tools"][0]["name"], "t100");
        let p2 = s.tools_page(2).unwrap();
        assert!(p2.get("nextCursor").is_none());
        assert_eq!(p2["tools"].as_array().unwrap().len(), 50);
    }

    #[test]
    fn every_change_calls_the_hook_once_with_its_list_and_no_change_calls_none() {
        use std::sync::Mutex;
        let reg = Registry::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (seen.clone(), reg.clone());
        reg.on_change(move |k| {
            // The new snapshot is in place when the hook runs.
            let n = r.snapshot().tools.len();
            s.lock().unwrap().push((k, n));
        });
        let tool = |n: &str| {
            Tool::new(n, "d", json!({"type": "object"}), |_, _| {
                Ok(ToolResult::text("x"))
            })
            .unwrap()
        };
        reg.add_tool(tool("a"));
        assert!(reg.replace_tools(&["a".into()], vec![tool("b"), tool("c")]));
        assert!(!reg.remove_tool("a"), "gone already: no change");
        assert!(!reg.replace_tools(&[], Vec::new()));
        assert!(reg.remove_tool("b"));
        reg.add_prompt(Prompt::new("p", "d", &[], |_| Ok(json!({}))));
        assert!(!reg.remove_prompt("q"));
        reg.add_resource(Resource::new("x://r", "r", "d", "text/plain", |_| {
            Ok(vec![])
        }));
        assert_eq!(
            *seen.lock().unwrap(),
            [
                (ListKind::Tools, 1),
                (ListKind::Tools, 2),
                (ListKind::Tools, 1),
                (ListKind::Prompts, 1),
                (ListKind::Resources, 1),
            ]
        );
        let snap = reg.snapshot();
        let names: Vec<&str> = snap.tools.iter().map(|t| t.name()).collect();
        assert_eq!(names, ["c"]);
    }
}
