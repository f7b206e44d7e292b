//! Models as MCP tools: `model_<name>` per model (its input schema from the
//! model's inputs, its outputs as `structuredContent`), plus `list_models`.
//! Calls go through the same batcher as HTTP requests.

use super::json::{decode_data, nested_shape, FlatData, Source};
use super::repository::Repository;
use super::tensor::{DType, Tensor, TensorSpec};
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
    let outputs = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(r) => break r.map_err(failed)?,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) if cx.is_cancelled() => {
                return Err(ToolError::Cancelled)
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(failed(Error::Unavailable("the model stopped".into())))
            }
        }
    };
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
        "Lists the ONNX models this server serves: name, state, version, inputs and outputs, and the tool that runs each.",
        json!({"type": "object", "properties": {}, "additionalProperties": false}),
        move |_args, _cx| {
            let models: Vec<Value> = r
                .index()
                .into_iter()
                .map(|e| {
                    let mut o = json!({"name": e.name, "state": e.state, "tool": tool_name(&e.name)});
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
        match model_tool(repo, name, meta) {
            Ok(t) => server.registry.add_tool(t),
            Err(e) => {
                tracing::error!(model = name, error = %e, "cannot register the model's MCP tool")
            }
        }
    });
}
