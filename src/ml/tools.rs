//! Models as MCP tools: `model_<name>` per model (its input schema from the
//! model's inputs, its outputs as `structuredContent`), plus `list_models`.
//! Calls go through the same batcher as HTTP requests.

use super::json::{decode_data, nested_shape, FlatData, Source};
use super::model::{Task, TextSummary};
use super::repository::{Change, Repository};
use super::tensor::{DType, Tensor, TensorSpec};
use super::text::{self, TextError, TextModel, Tokens};
use super::Error;
use crate::mcp::{self, Tool, ToolCtx, ToolError, ToolResult};
use crate::util::lock;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The tool name of model `name`.
pub fn tool_name(name: &str) -> String {
    format!("model_{name}")
}

fn elem_schema(d: DType) -> Value {
    match d {
        DType::Bool => json!({"type": "boolean"}),
        DType::F32 | DType::F64 => json!({"type": "number"}),
        DType::U8
        | DType::U16
        | DType::U32
        | DType::U64
        | DType::I8
        | DType::I16
        | DType::I32
        | DType::I64 => json!({"type": "integer"}),
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

/// The tool names of text model `name`: a reranker is `rerank_<name>`; a
/// classifier `classify_<name>`; an embedding model is `embed_<name>` and
/// `rank_<name>` (cosine ranking).
pub fn text_tool_names(name: &str, task: Task) -> Vec<String> {
    match task {
        Task::Embed => vec![format!("embed_{name}"), format!("rank_{name}")],
        Task::Rerank => vec![format!("rerank_{name}")],
        Task::Classify => vec![format!("classify_{name}")],
    }
}

/// What a text model gave for a call's texts.
struct TextRun {
    /// One vector per text: an embedding, a reranker's logit, or a
    /// classifier's logits.
    outputs: Vec<Vec<f32>>,
    /// The model's text policy.
    text: Arc<TextModel>,
    /// Tokens used.
    tokens: usize,
}

/// Runs the `n` texts that `encode` makes (tokenized in parallel) through
/// text model `model`.
fn run_texts(
    repo: &Repository,
    model: &str,
    n: usize,
    encode: impl Fn(&TextModel, usize) -> Result<Tokens, TextError> + Sync,
    cx: &ToolCtx,
) -> Result<TextRun, ToolError> {
    use rayon::prelude::*;
    let lease = repo.lease(model).map_err(failed)?;
    let text = lease
        .loaded
        .text
        .clone()
        .ok_or_else(|| ToolError::Failed(format!("model {model:?} does not take text")))?;
    let tokens: Vec<Tokens> = (0..n)
        .into_par_iter()
        .map(|i| encode(&text, i).map_err(|e| ToolError::Failed(format!("text {i}: {e}"))))
        .collect::<Result<_, _>>()?;
    let used = tokens.iter().map(Tokens::len).sum();
    let (tx, rx) = crossbeam_channel::bounded(1);
    lease.submit_texts(
        tokens,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    Ok(TextRun {
        outputs: wait(&rx, cx)?,
        text,
        tokens: used,
    })
}

/// Embeds `texts` with text model `model`: unit vectors (when the model
/// normalizes) and the tokens used.
fn embed(
    repo: &Repository,
    model: &str,
    texts: &[String],
    cx: &ToolCtx,
) -> Result<(Vec<Vec<f32>>, usize), ToolError> {
    let TextRun {
        mut outputs,
        text,
        tokens,
    } = run_texts(
        repo,
        model,
        texts.len(),
        |m, i| m.encode(&texts[i], m.truncate),
        cx,
    )?;
    if text.normalize {
        outputs.iter_mut().for_each(|v| text::normalize(v));
    }
    Ok((outputs, tokens))
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

/// The schema of a list of 1 to `max` texts.
fn texts_schema(max: usize, what: &str) -> Value {
    json!({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": max, "description": what})
}

/// The input schema of the ranking tools.
fn rank_schema(max: usize) -> Value {
    json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for"},
            "documents": texts_schema(max, &format!("1 to {max} documents to rank")),
            "top_n": {"type": "integer", "minimum": 1, "description": "How many to return (default: all)"},
        },
        "required": ["query", "documents"],
        "additionalProperties": false,
    })
}

/// A ranking tool's answer: the `top_n` documents (default all) by score,
/// best first (ties in input order), each with its index and score.
fn ranked(model: &str, args: &Value, docs: &[String], scores: &[f32], tokens: usize) -> ToolResult {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let top = args
        .get("top_n")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(order.len());
    let results: Vec<Value> = order
        .into_iter()
        .take(top)
        .map(|i| json!({"index": i, "score": scores[i], "document": docs[i]}))
        .collect();
    ToolResult::structured(json!({
        "model": model,
        "results": results,
        "usage": {"tokens": tokens},
    }))
}

/// The MCP tools of text model `name` (see [`text_tool_names`]).
pub fn text_tools(
    repo: Arc<Repository>,
    name: &str,
    t: &TextSummary,
) -> Result<Vec<Tool>, mcp::Error> {
    match t.task {
        Task::Embed => embed_tools(repo, name, t),
        Task::Rerank => Ok(vec![rerank_tool(repo, name, t)?]),
        Task::Classify => Ok(vec![classify_tool(repo, name, t)?]),
    }
}

fn annotations() -> Value {
    json!({"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false})
}

/// `rerank_<name>`: a cross-encoder scores each (query, document) pair.
fn rerank_tool(repo: Arc<Repository>, name: &str, t: &TextSummary) -> Result<Tool, mcp::Error> {
    let max = repo.max_texts();
    let max_bytes = repo.max_input_bytes();
    let model = name.to_string();
    Ok(Tool::new(
        &format!("rerank_{name}"),
        &format!(
            "Reranks documents by relevance to a query with the cross-encoder {name:?}, which reads the query and each document together (more precise than comparing embeddings). A score is the model's probability that the document answers the query: near 1 relevant, near 0 not; compare scores within one call. A query and document together over {} tokens are cut to that length. Returns the top documents, best first, with their index in the input and their score. Batched with other callers'.",
            t.max_length
        ),
        rank_schema(max),
        move |args, cx| {
            let query = args.get("query").and_then(Value::as_str).unwrap_or_default();
            let docs = strings(&args, "documents");
            // The query is tokenized once per document.
            let work = text::pair_work(query, &docs);
            if work > max_bytes {
                return Err(ToolError::Failed(format!(
                    "the query ({} bytes) paired with each of {} documents is {work} bytes to tokenize, over the limit of {max_bytes}; send a shorter query or fewer documents",
                    query.len(),
                    docs.len()
                )));
            }
            let run = run_texts(
                &repo,
                &model,
                docs.len(),
                |m, i| m.encode_pair(query, &docs[i], m.truncate),
                cx,
            )?;
            let scores: Vec<f32> = run
                .outputs
                .iter()
                .map(|v| text::sigmoid(v.first().copied().unwrap_or(f32::NAN)))
                .collect();
            if scores.iter().any(|s| s.is_nan()) {
                return Err(ToolError::Failed("the model gave no score (NaN)".into()));
            }
            Ok(ranked(&model, &args, &docs, &scores, run.tokens))
        },
    )?
    .with_annotations(annotations()))
}

/// `classify_<name>`: a sequence classifier labels each text.
fn classify_tool(repo: Arc<Repository>, name: &str, t: &TextSummary) -> Result<Tool, mcp::Error> {
    let max = repo.max_texts();
    let model = name.to_string();
    let score = if t.labels.len() == 1 {
        "the model's probability for the label (the sigmoid of its logit)"
    } else {
        "the model's probability for the label (a softmax over the labels: a text's scores sum to 1)"
    };
    Ok(Tool::new(
        &format!("classify_{name}"),
        &format!(
            "Classifies texts with the sequence classifier {name:?}, whose labels are: {}. A score is {score}. Texts over {} tokens are cut to that length. Returns, for each text in input order, its labels with their scores, best first (only the top_n best when given), and the tokens used. Batched with other callers'.",
            t.labels.join(", "),
            t.max_length
        ),
        json!({
            "type": "object",
            "properties": {
                "texts": texts_schema(max, &format!("1 to {max} texts to classify")),
                "top_n": {"type": "integer", "minimum": 1, "description": "How many labels to return per text, best first (default: all)"},
            },
            "required": ["texts"],
            "additionalProperties": false,
        }),
        move |args, cx| {
            let texts = strings(&args, "texts");
            let run = run_texts(
                &repo,
                &model,
                texts.len(),
                |m, i| m.encode(&texts[i], m.truncate),
                cx,
            )?;
            let top = args
                .get("top_n")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(usize::MAX);
            let labels = &run.text.labels;
            let mut results = Vec::with_capacity(run.outputs.len());
            for (index, logits) in run.outputs.iter().enumerate() {
                let scores = text::class_scores(logits, false);
                if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
                    return Err(ToolError::Failed(format!(
                        "the model gave no scores for text {index} (NaN)"
                    )));
                }
                let ranked: Vec<Value> = text::by_score(&scores)
                    .into_iter()
                    .take(top)
                    .map(|k| json!({"label": labels[k], "score": scores[k]}))
                    .collect();
                results.push(json!({"index": index, "labels": ranked}));
            }
            Ok(ToolResult::structured(json!({
                "model": model,
                "results": results,
                "usage": {"tokens": run.tokens},
            })))
        },
    )?
    .with_annotations(annotations()))
}

/// `embed_<name>` and `rank_<name>` for embedding model `name`.
fn embed_tools(
    repo: Arc<Repository>,
    name: &str,
    t: &TextSummary,
) -> Result<Vec<Tool>, mcp::Error> {
    let max = repo.max_texts();
    let (r, model) = (repo.clone(), name.to_string());
    let embed_tool = Tool::new(
        &format!("embed_{name}"),
        &format!(
            "Embeds texts with the text model {name:?}: each text becomes a {}-dimensional unit vector; the cosine similarity of two texts is the dot product of their vectors. Texts over {} tokens are cut to that length. Returns the vectors in input order and the tokens used. Batched with other callers'.",
            t.dim, t.max_length
        ),
        json!({
            "type": "object",
            "properties": {"texts": texts_schema(max, &format!("1 to {max} texts to embed"))},
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
    .with_annotations(annotations());
    let (r, model) = (repo, name.to_string());
    let rank_tool = Tool::new(
        &format!("rank_{name}"),
        &format!(
            "Ranks documents by meaning against a query with the text model {name:?}: the cosine similarity of their embeddings (1 = same meaning, 0 = unrelated, below 0 = opposed). Returns the top documents, best first, with their index in the input and their score."
        ),
        rank_schema(max.saturating_sub(1)),
        move |args, cx| {
            let query = args.get("query").and_then(Value::as_str).unwrap_or_default();
            let docs = strings(&args, "documents");
            let mut texts = Vec::with_capacity(docs.len() + 1);
            texts.push(query.to_string());
            texts.extend(docs.iter().cloned());
            let (vectors, tokens) = embed(&r, &model, &texts, cx)?;
            let (q, rest) = vectors
                .split_first()
                .ok_or_else(|| ToolError::Failed("no vectors".into()))?;
            let scores: Vec<f32> = rest.iter().map(|v| text::cosine(q, v)).collect();
            Ok(ranked(&model, &args, &docs, &scores, tokens))
        },
    )?
    .with_annotations(annotations());
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

/// Registers `list_models` now, and each model's tools when it starts
/// serving (at load, and again if a reload changes its metadata); an
/// unload through the repository API removes them. Each change sends
/// `notifications/tools/list_changed` (the registry's change hook).
pub fn register(repo: &Arc<Repository>, server: &Arc<mcp::Server>) {
    let r = repo.clone();
    let list = Tool::new(
        "list_models",
        "Lists the ONNX models this server serves: name, state, version, inputs and outputs, and the tools that run each (embedding models: embed_<name> and rank_<name>; rerankers: rerank_<name>; classifiers: classify_<name>, with their labels).",
        json!({"type": "object", "properties": {}, "additionalProperties": false}),
        move |_args, _cx| {
            let models: Vec<Value> = r
                .index()
                .into_iter()
                .map(|e| {
                    let text = r.known_metadata(&e.name).and_then(|m| m.text.clone());
                    let mut o = json!({"name": e.name, "state": e.state});
                    match text {
                        Some(t) => {
                            o["tools"] = json!(text_tool_names(&e.name, t.task));
                            o["text"] = json!({"task": t.task.name(), "dimensions": t.dim, "max_tokens": t.max_length});
                            if t.task == Task::Classify {
                                o["text"]["labels"] = json!(t.labels);
                            }
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
    // The tools registered for each model, so a reload that changes them
    // (another task, say) or an unload takes the old ones away.
    let registered: Mutex<HashMap<String, Vec<String>>> = Mutex::default();
    repo.on_change(move |name, change| {
        let (Some(server), Some(repo)) = (s.upgrade(), r.upgrade()) else {
            return;
        };
        let tools = match change {
            // A text model is called with text (an agent has no tokenizer).
            Change::Serving(meta) => match &meta.text {
                Some(t) => text_tools(repo, name, t),
                None => model_tool(repo, name, meta).map(|t| vec![t]),
            },
            Change::Withdrawn => Ok(Vec::new()),
        };
        let tools = tools.unwrap_or_else(|e| {
            tracing::error!(model = name, error = %e, "cannot register the model's MCP tools");
            Vec::new()
        });
        let mut registered = lock(&registered);
        let names: Vec<String> = tools.iter().map(|t| t.name().to_string()).collect();
        let old = registered
            .insert(name.to_string(), names)
            .unwrap_or_default();
        // One registry change, so one tools/list_changed per model event.
        server.registry.replace_tools(&old, tools);
    });
}
