//! Models as MCP tools: `model_<name>` per model (its input schema from the
//! model's inputs, its outputs as `structuredContent`), plus `list_models`.
//! Calls go through the same batcher as HTTP requests.

use super::json::{decode_data, nested_shape, FlatData, Source};
use super::model::TextSummary;
use super::repository::Repository;
use super::tensor::{DType, Tensor, TensorSpec};
use super::text::{self, Tokens};
use super::Error;
use crate::mcp::{self, Tool, ToolCtx, ToolError, ToolResult};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// The tool name of model `name`.
pub fn tool_name(name: &str) -> String {
    format!("model_{name}")
}

fn elem_schema(d: DType) -> Value {
    match d {
        DType::Bool => json!({"type": "boolean"}),
        DType::F32 | DType::F64 => json!({"type": "number"}),
        _ => json!({"type": "integer"}),
    }
}

fn nested_schema(dims: &[i64], elem: &Value) -> Value {
    match dims.split_first() {
        None => elem.clone(),
        Some((&d, rest)) => {
            let mut s = json!({"type": "array", "items": nested_schema(rest, elem)});
            if d >= 0 {
                s["minItems"] = d.into();
                s["maxItems"] = d.into();
            }
            s
        }
    }
}

fn input_schema(spec: &TensorSpec, batched: bool) -> Value {
    let elem = elem_schema(spec.dtype);
    let mut forms = vec![nested_schema(&spec.shape, &elem)];
    if batched {
        // One row, without the batch dimension.
        forms.push(nested_schema(&spec.shape[1..], &elem));
    }
    forms.push(json!({
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": elem},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        },
        "required": ["data", "shape"],
        "additionalProperties": false,
    }));
    json!({
        "description": format!("{} {:?} (-1 = any): nested arrays{}, or {{\"data\": [flat], \"shape\": [...]}}",
            spec.dtype.name(), spec.shape, if batched { " (the batch dimension may be left out for one row)" } else { "" }),
        "anyOf": forms,
    })
}

fn describe(specs: &[TensorSpec]) -> String {
    specs
        .iter()
        .map(|s| format!("{} {} {:?}", s.name, s.dtype.name(), s.shape))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tool that runs model `name`.
pub fn model_tool(
    repo: Arc<Repository>,
    name: &str,
    meta: &super::model::Metadata,
) -> Result<Tool, mcp::Error> {
    let batched = meta.max_batch_size > 0;
    let mut props = Map::new();
    for s in &meta.inputs {
        props.insert(s.name.clone(), input_schema(s, batched));
    }
    let required: Vec<&str> = meta.inputs.iter().map(|s| s.name.as_str()).collect();
    let schema = json!({"type": "object", "properties": props, "required": required, "additionalProperties": false});
    let description = format!(
        "Runs the ONNX model {name:?}. Inputs: {}. Outputs: {}. Calls are batched with other callers'.",
        describe(&meta.inputs),
        describe(&meta.outputs)
    );
    let model = name.to_string();
    let tool = Tool::new(&tool_name(name), &description, schema, move |args, cx| {
        call(&repo, &model, &args, cx)
    })?;
    Ok(tool.with_annotations(
        json!({"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false}),
    ))
}

fn failed(e: Error) -> ToolError {
    ToolError::Failed(e.client_message())
}

/// Waits for the batcher's answer; a cancelled call stops waiting (the
/// batch still runs for the others in it).
fn wait<T>(
    rx: &crossbeam_channel::Receiver<Result<T, Error>>,
    cx: &ToolCtx,
) -> Result<T, ToolError> {
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(r) => return r.map_err(failed),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) if cx.is_cancelled() => {
                return Err(ToolError::Cancelled)
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(failed(Error::Unavailable("the model stopped".into())))
            }
        }
    }
}

/// The tool names of text model `name`.
pub fn text_tool_names(name: &str) -> [String; 2] {
    [format!("embed_{name}"), format!("rank_{name}")]
}

/// Embeds `texts` with text model `model`: unit vectors (when the model
/// normalizes) and the tokens used.
fn embed(
    repo: &Repository,
    model: &str,
    texts: &[String],
    cx: &ToolCtx,
) -> Result<(Vec<Vec<f32>>, usize), ToolError> {
    use rayon::prelude::*;
    let lease = repo.lease(model).map_err(failed)?;
    let text = lease
        .loaded
        .text
        .clone()
        .ok_or_else(|| ToolError::Failed(format!("model {model:?} does not take text")))?;
    let tokens: Vec<Tokens> = texts
        .par_iter()
        .enumerate()
        .map(|(i, t)| {
            text.encode(t, text.truncate)
                .map_err(|e| ToolError::Failed(format!("text {i}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let used = tokens.iter().map(Tokens::len).sum();
    let (tx, rx) = crossbeam_channel::bounded(1);
    lease.submit_texts(
        tokens,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    let mut vectors = wait(&rx, cx)?;
    if text.normalize {
        vectors.iter_mut().for_each(|v| text::normalize(v));
    }
    Ok((vectors, used))
}

/// Strings of `args[key]` (the schema has checked their type and count).
fn strings(args: &Value, key: &str) -> Vec<String> {
    args.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `embed_<name>` and `rank_<name>` for text model `name`.
pub fn text_tools(
    repo: Arc<Repository>,
    name: &str,
    t: &TextSummary,
) -> Result<Vec<Tool>, mcp::Error> {
    let max = repo.max_texts();
    let [embed_name, rank_name] = text_tool_names(name);
    let texts_schema = |what: &str| json!({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": max, "description": what});
    let annotations = json!({"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false});
    let (r, model) = (repo.clone(), name.to_string());
    let embed_tool = Tool::new(
        &embed_name,
        &format!(
            "Embeds texts with the text model {name:?}: each text becomes a {}-dimensional unit vector; the cosine similarity of two texts is the dot product of their vectors. Texts over {} tokens are cut to that length. Returns the vectors in input order and the tokens used. Batched with other callers'.",
            t.dim, t.max_length
        ),
        json!({
            "type": "object",
            "properties": {"texts": texts_schema(&format!("1 to {max} texts to embed"))},
            "required": ["texts"],
            "additionalProperties": false,
        }),
        move |args, cx| {
            let texts = strings(&args, "texts");
            let (vectors, tokens) = embed(&r, &model, &texts, cx)?;
            Ok(ToolResult::structured(json!({
                "model": model,
                "dimensions": vectors.first().map_or(0, Vec::len),
                "embeddings": vectors,
                "usage": {"tokens": tokens},
            })))
        },
    )?
    .with_annotations(annotations.clone());
    let (r, model) = (repo, name.to_string());
    let rank_tool = Tool::new(
        &rank_name,
        &format!(
            "Ranks documents by meaning against a query with the text model {name:?}: the cosine similarity of their embeddings (1 = same meaning, 0 = unrelated, below 0 = opposed). Returns the top documents, best first, with their index in the input and their score."
        ),
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for"},
                "documents": texts_schema(&format!("1 to {} documents to rank", max.saturating_sub(1))),
                "top_n": {"type": "integer", "minimum": 1, "description": "How many to return (default: all)"},
            },
            "required": ["query", "documents"],
            "additionalProperties": false,
        }),
        move |args, cx| {
            let query = args.get("query").and_then(Value::as_str).unwrap_or_default();
            let docs = strings(&args, "documents");
            let mut texts = Vec::with_capacity(docs.len() + 1);
            texts.push(query.to_string());
            texts.extend(docs.iter().cloned());
            let (vectors, tokens) = embed(&r, &model, &texts, cx)?;
            let (q, rest) = vectors.split_first().ok_or_else(|| ToolError::Failed("no vectors".into()))?;
            let mut ranked: Vec<(usize, f32)> = rest
                .iter()
                .enumerate()
                .map(|(i, v)| (i, text::cosine(q, v)))
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            let top = args
                .get("top_n")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(ranked.len());
            let results: Vec<Value> = ranked
                .into_iter()
                .take(top)
                .map(|(i, score)| json!({"index": i, "score": score, "document": docs[i]}))
                .collect();
            Ok(ToolResult::structured(json!({
                "model": model,
                "results": results,
                "usage": {"tokens": tokens},
            })))
        },
    )?
    .with_annotations(annotations);
    Ok(vec![embed_tool, rank_tool])
}

fn call(
    repo: &Repository,
    model: &str,
    args: &Value,
    cx: &ToolCtx,
) -> Result<ToolResult, ToolError> {
    let lease = repo.lease(model).map_err(failed)?;
    let meta = lease.loaded.meta.clone();
    let batched = meta.max_batch_size > 0;
    let mut inputs = Vec::with_capacity(meta.inputs.len());
    for spec in &meta.inputs {
        let v = args
            .get(&spec.name)
            .ok_or_else(|| ToolError::Failed(format!("missing input {:?}", spec.name)))?;
        let (data_v, mut shape) = match v {
            Value::Object(o) => {
                let shape: Vec<usize> = serde_json::from_value(
                    o.get("shape").cloned().unwrap_or_default(),
                )
                .map_err(|e| ToolError::Failed(format!("input {:?}: shape: {e}", spec.name)))?;
                (o.get("data").unwrap_or(&Value::Null), shape)
            }
            other => (other, nested_shape(other)),
        };
        if batched && shape.len() + 1 == spec.shape.len() {
            shape.insert(0, 1);
        }
        let (_, n) = lease
            .check_input(&spec.name, spec.dtype, &shape, repo.max_input_bytes())
            .map_err(failed)?;
        inputs.push(Tensor {
            name: spec.name.clone(),
            data: decode_data(&spec.name, spec.dtype, Source::Value(data_v), n).map_err(failed)?,
            shape,
        });
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    lease.submit(
        inputs,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    let outputs = wait(&rx, cx)?;
    let mut out = Map::new();
    for t in &outputs {
        out.insert(
            t.name.clone(),
            json!({"datatype": t.dtype().name(), "shape": t.shape, "data": FlatData(&t.data)}),
        );
    }
    Ok(ToolResult::structured(
        json!({"model": model, "outputs": out}),
    ))
}

/// Registers `list_models` now and `model_<name>` as each model's metadata
/// becomes known (at load; the tool list changes then).
pub fn register(repo: &Arc<Repository>, server: &Arc<mcp::Server>) {
    let r = repo.clone();
    let list = Tool::new(
        "list_models",
        "Lists the ONNX models this server serves: name, state, version, inputs and outputs, and the tool that runs each (text models: embed_<name> and rank_<name>).",
        json!({"type": "object", "properties": {}, "additionalProperties": false}),
        move |_args, _cx| {
            let models: Vec<Value> = r
                .index()
                .into_iter()
                .map(|e| {
                    let text = r.known_metadata(&e.name).and_then(|m| m.text);
                    let mut o = json!({"name": e.name, "state": e.state});
                    match text {
                        Some(t) => {
                            o["tools"] = json!(text_tool_names(&e.name));
                            o["text"] = json!({"dimensions": t.dim, "max_tokens": t.max_length});
                        }
                        None => o["tool"] = tool_name(&e.name).into(),
                    }
                    if !e.version.is_empty() {
                        o["version"] = e.version.into();
                    }
                    if !e.reason.is_empty() {
                        o["reason"] = e.reason.into();
                    }
                    if let Some(m) = r.known_metadata(&e.name) {
                        let io = |s: &[TensorSpec]| -> Vec<Value> {
                            s.iter().map(|s| json!({"name": s.name, "datatype": s.dtype.name(), "shape": s.shape})).collect()
                        };
                        o["inputs"] = io(&m.inputs).into();
                        o["outputs"] = io(&m.outputs).into();
                        o["max_batch_size"] = m.max_batch_size.into();
                    }
                    o
                })
                .collect();
            Ok(ToolResult::structured(json!({"models": models})))
        },
    );
    match list {
        Ok(t) => server
            .registry
            .add_tool(t.with_annotations(json!({"readOnlyHint": true}))),
        Err(e) => tracing::error!(error = %e, "cannot register list_models"),
    }
    // Weak both ways: the repository keeps this listener, the server keeps the tools.
    let r = Arc::downgrade(repo);
    let s = Arc::downgrade(server);
    repo.on_metadata(move |name, meta| {
        let (Some(server), Some(repo)) = (s.upgrade(), r.upgrade()) else {
            return;
        };
        // A text model is called with text (an agent has no tokenizer).
        let tools = match &meta.text {
            Some(t) => text_tools(repo, name, t),
            None => model_tool(repo, name, meta).map(|t| vec![t]),
        };
        match tools {
            Ok(tools) => tools.into_iter().for_each(|t| server.registry.add_tool(t)),
            Err(e) => {
                tracing::error!(model = name, error = %e, "cannot register the model's MCP tools")
            }
        }
    });
}
