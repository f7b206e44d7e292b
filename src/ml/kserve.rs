//! The KServe v2 / Open Inference Protocol HTTP routes (Triton-compatible),
//! with the binary tensor data, statistics and model repository extensions.
//!
//! Invariant: bad input answers 400/404 with `{"error": "..."}`, never 500.
//! Invariant: an input's dtype and shape are checked before its data is decoded.

use super::json::{decode_data, FlatData, Source};
use super::model::{Metadata, Task};
use super::repository::{Lease, Repository};
use super::tensor::{DType, Data, Tensor, TensorSpec};
use super::text::{TextModel, Tokens};
use super::{Error, MlConfig};
use crate::http::{Cx, Method, Mode, Reply, Request, Responder, Response, Router};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Bodies up to this size are decoded on the I/O loop (a few µs); larger
/// ones move to a worker thread.
const INLINE_BODY_BYTES: usize = 16 * 1024;
/// Outputs up to this many elements are encoded on the batcher thread.
const INLINE_OUTPUT_ELEMS: usize = 16 * 1024;
/// The header of the binary tensor extension.
const HEADER_LEN: &str = "inference-header-content-length";

/// The HTTP status of an engine error, for every HTTP adapter.
pub(crate) fn status_of(e: &Error) -> u16 {
    match e {
        Error::InvalidName(_) | Error::BadInput(_) => 400,
        Error::Forbidden(_) => 403,
        Error::NotJson => 415,
        Error::NotFound(_) | Error::VersionNotFound { .. } => 404,
        Error::QueueTimeout(_) => 504,
        Error::Inference(_) => 500,
        Error::LibraryMissing { .. }
        | Error::LoadFailed { .. }
        | Error::ModelLoad { .. }
        | Error::Unavailable(_)
        | Error::QueueFull => 503,
    }
}

fn error_response(status: u16, msg: &str) -> Response {
    Response::json(status, json!({ "error": msg }).to_string())
}

/// The KServe v2 answer for an engine error.
pub fn error_reply(e: &Error) -> Response {
    let r = error_response(status_of(e), &e.client_message());
    if matches!(e, Error::QueueFull) {
        r.header("retry-after", "1")
    } else {
        r
    }
}

fn ok_json(v: &Value) -> Reply {
    Reply::Response(Response::json(200, v.to_string()))
}

/// Who may use the routes that change the repository (load, unload).
#[derive(Debug, Clone)]
struct WriteGuard {
    enabled: bool,
    key: Option<String>,
    hosts: Vec<String>,
    origins: Vec<String>,
}

/// Registers the `/v2` routes. `hosts` and `origins` are the allow-lists
/// (shared with MCP) that state-changing routes check (SECURITY.md I9).
pub fn routes(
    router: &mut Router,
    repo: Arc<Repository>,
    cfg: &MlConfig,
    hosts: &[String],
    origins: &[String],
) {
    let r = repo.clone();
    let repo_api = cfg.repository_api;
    router.route(Method::Get, "/v2", Mode::Inline, move |_: &mut Request, _: &mut Cx<'_>| {
        let mut ext = vec!["binary_tensor_data", "statistics"];
        if repo_api {
            ext.push("model_repository");
        }
        ok_json(&json!({"name": "conduit", "version": env!("CARGO_PKG_VERSION"), "extensions": ext}))
    });
    router.route(
        Method::Get,
        "/v2/health/live",
        Mode::Inline,
        |_: &mut Request, _: &mut Cx<'_>| Reply::Response(Response::new(200)),
    );
    router.route(
        Method::Get,
        "/v2/health/ready",
        Mode::Inline,
        move |_: &mut Request, _: &mut Cx<'_>| match r.runtime() {
            Ok(_) => Reply::Response(Response::new(200)),
            Err(e) => Reply::Response(error_reply(&e)),
        },
    );
    for base in ["/v2/models/{name}", "/v2/models/{name}/versions/{version}"] {
        let r = repo.clone();
        router.route(
            Method::Get,
            base,
            Mode::Pool,
            move |req: &mut Request, _: &mut Cx<'_>| Reply::Response(with_model(&r, req, metadata)),
        );
        let r = repo.clone();
        router.route(
            Method::Get,
            &format!("{base}/ready"),
            Mode::Pool,
            move |req: &mut Request, _: &mut Cx<'_>| {
                Reply::Response(with_model(&r, req, |_| Response::new(200)))
            },
        );
        let r = repo.clone();
        router.route(
            Method::Get,
            &format!("{base}/config"),
            Mode::Pool,
            move |req: &mut Request, _: &mut Cx<'_>| {
                Reply::Response(with_model(&r, req, model_config))
            },
        );
        let r = repo.clone();
        router.route(
            Method::Get,
            &format!("{base}/stats"),
            Mode::Inline,
            move |req: &mut Request, _: &mut Cx<'_>| {
                let name = req.param("name").unwrap_or_default();
                match stats_of(&r, name, req.param("version")) {
                    Ok(s) => ok_json(&json!({ "model_stats": [s] })),
                    Err(e) => Reply::Response(error_reply(&e)),
                }
            },
        );
        let r = repo.clone();
        router.route_with_limit(
            Method::Post,
            &format!("{base}/infer"),
            Mode::Inline,
            cfg.max_input_bytes,
            move |req: &mut Request, cx: &mut Cx<'_>| infer_route(&r, req, cx),
        );
    }
    let r = repo.clone();
    router.route(
        Method::Get,
        "/v2/models/stats",
        Mode::Inline,
        move |_: &mut Request, _: &mut Cx<'_>| {
            let all: Vec<Value> = r
                .names()
                .iter()
                .filter_map(|n| stats_of(&r, n, None).ok())
                .collect();
            ok_json(&json!({ "model_stats": all }))
        },
    );
    let r = repo.clone();
    router.route(
        Method::Post,
        "/v2/repository/index",
        Mode::Inline,
        move |_: &mut Request, _: &mut Cx<'_>| {
            let idx: Vec<Value> = r
                .index()
                .into_iter()
                .map(|e| {
                    let mut o = json!({"name": e.name, "state": e.state});
                    if !e.version.is_empty() {
                        o["version"] = e.version.into();
                    }
                    if !e.reason.is_empty() {
                        o["reason"] = e.reason.into();
                    }
                    o
                })
                .collect();
            ok_json(&Value::Array(idx))
        },
    );
    let guard = Arc::new(WriteGuard {
        enabled: repo_api,
        key: cfg.repository_api_key.clone(),
        hosts: hosts.to_vec(),
        origins: origins.to_vec(),
    });
    for (action, load) in [("load", true), ("unload", false)] {
        let (r, g) = (repo.clone(), guard.clone());
        router.route(
            Method::Post,
            &format!("/v2/repository/models/{{name}}/{action}"),
            Mode::Pool,
            move |req: &mut Request, _: &mut Cx<'_>| {
                Reply::Response(repository_action(&r, req, &g, load))
            },
        );
    }
    // tritonclient parses every error body as JSON, 413s from the HTTP layer included.
    router.json_errors("/v2");
}

fn repository_action(repo: &Repository, req: &Request, g: &WriteGuard, load: bool) -> Response {
    if let Err(e) = check_write(req, g) {
        return error_reply(&e);
    }
    let name = req.param("name").unwrap_or_default();
    let result = if load {
        repo.load(name)
    } else {
        repo.unload(name)
    };
    match result {
        Ok(()) => Response::json(200, "{}"),
        // Triton answers a failed explicit load with 400.
        Err(e @ Error::ModelLoad { .. }) => error_response(400, &e.to_string()),
        Err(e) => error_reply(&e),
    }
}

/// May this request change the repository?
fn check_write(req: &Request, g: &WriteGuard) -> Result<(), Error> {
    if !g.enabled {
        return Err(Error::Forbidden(
            "the model repository API is off; set ml.repository_api = true to enable it".into(),
        ));
    }
    // SECURITY.md I9: no DNS-rebinding or cross-site page may change the
    // repository. A browser sends `Origin` on every cross-origin POST, and
    // JSON is no "simple" request type. An empty body with no type is what
    // tritonclient's load/unload sends.
    crate::http::origin::check(req, &g.hosts, &g.origins)
        .map_err(|why| Error::Forbidden(why.to_string()))?;
    let json = match req.header_str("content-type") {
        Some(ct) => ct
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json"),
        None => req.body().is_empty(),
    };
    if !json {
        return Err(Error::NotJson);
    }
    if let Some(key) = &g.key {
        use subtle::ConstantTimeEq;
        let given = req.header("conduit-repository-key").unwrap_or_default();
        // SECURITY.md I5: constant-time comparison.
        if !bool::from(given.ct_eq(key.as_bytes())) {
            return Err(Error::Forbidden(
                "missing or wrong Conduit-Repository-Key header".into(),
            ));
        }
    }
    Ok(())
}

/// Checks that the version the route names (if any) is the one served.
fn check_version(lease: Lease, req: &Request) -> Result<Lease, Error> {
    match req.param("version") {
        Some(v) if v != lease.loaded.version => Err(Error::VersionNotFound {
            name: lease.name().to_string(),
            version: v.to_string(),
            serving: lease.loaded.version.clone(),
        }),
        _ => Ok(lease),
    }
}

/// The model the route names, loading it if needed, at the version asked for.
fn lease_for(repo: &Repository, req: &Request) -> Result<Lease, Error> {
    check_version(repo.lease(req.param("name").unwrap_or_default())?, req)
}

fn with_model(repo: &Repository, req: &Request, f: impl FnOnce(&Lease) -> Response) -> Response {
    match lease_for(repo, req) {
        Ok(l) => f(&l),
        Err(e) => error_reply(&e),
    }
}

fn spec_json(s: &TensorSpec) -> Value {
    json!({"name": s.name, "datatype": s.dtype.name(), "shape": s.shape})
}

fn metadata(l: &Lease) -> Response {
    let m = &l.loaded.meta;
    let v = json!({
        "name": l.name(),
        "versions": [l.loaded.version],
        "platform": "onnxruntime_onnx",
        "inputs": m.inputs.iter().map(spec_json).collect::<Vec<_>>(),
        "outputs": m.outputs.iter().map(spec_json).collect::<Vec<_>>(),
    });
    Response::json(200, v.to_string())
}

fn model_config(l: &Lease) -> Response {
    let m = &l.loaded.meta;
    let c = &l.loaded.cfg;
    // Triton's config lists dims without the batch dim when batching is on.
    let dims = |s: &TensorSpec| -> Vec<i64> {
        if m.max_batch_size > 0 {
            s.shape[1..].to_vec()
        } else {
            s.shape.clone()
        }
    };
    let io = |specs: &[TensorSpec]| -> Vec<Value> {
        specs
            .iter()
            .map(|s| json!({"name": s.name, "data_type": format!("TYPE_{}", s.dtype.name()), "dims": dims(s)}))
            .collect()
    };
    let v = json!({
        "name": l.name(),
        "platform": "onnxruntime_onnx",
        "backend": "onnxruntime",
        "max_batch_size": m.max_batch_size,
        "input": io(&m.inputs),
        "output": io(&m.outputs),
        "dynamic_batching": {
            "max_queue_delay_microseconds": c.max_queue_delay_us,
            "preferred_batch_size": c.preferred_batch_sizes,
            "default_queue_policy": {
                "max_queue_size": c.max_queue_size,
                "default_timeout_microseconds": c.queue_timeout_ms * 1000,
            },
        },
        "instance_group": [{"count": c.instances, "kind": "KIND_CPU"}],
        "parameters": {"intra_op_thread_count": {"string_value": c.intra_op_threads.to_string()}},
    });
    Response::json(200, v.to_string())
}

fn stats_of(repo: &Repository, name: &str, version: Option<&str>) -> Result<Value, Error> {
    let (s, serving) = repo.stats(name)?;
    if let Some(v) = version {
        if v != serving {
            return Err(Error::VersionNotFound {
                name: name.into(),
                version: v.into(),
                serving,
            });
        }
    }
    let t = &s.totals;
    let pair = |c: &std::sync::atomic::AtomicU64, ns: &std::sync::atomic::AtomicU64| json!({"count": c.load(Relaxed), "ns": ns.load(Relaxed)});
    let zero = std::sync::atomic::AtomicU64::new(0);
    Ok(json!({
        "name": name,
        "version": serving,
        "last_inference": t.last_inference_ms.load(Relaxed),
        "inference_count": t.inference_count.load(Relaxed),
        "execution_count": t.execution_count.load(Relaxed),
        "inference_stats": {
            "success": pair(&t.success_count, &t.success_ns),
            "fail": pair(&t.fail_count, &zero),
            "queue": pair(&t.queue_count, &t.queue_ns),
            "compute_infer": pair(&t.execution_count, &t.compute_ns),
        },
    }))
}

fn infer_route(repo: &Arc<Repository>, req: &mut Request, cx: &mut Cx<'_>) -> Reply {
    // Small bodies for a loaded model: decode here, no thread hop.
    if req.body().len() <= INLINE_BODY_BYTES {
        let name = req.param("name").unwrap_or_default();
        match repo.lease_with(name, false) {
            // A text model's texts are tokenized off the I/O loop.
            Ok(Some(lease)) if lease.loaded.text.is_none() => {
                let lease = match check_version(lease, req) {
                    Ok(l) => l,
                    Err(e) => return Reply::Response(error_reply(&e)),
                };
                let parsed = parse_infer(
                    lease.name(),
                    &lease.loaded.meta,
                    req,
                    repo.max_input_bytes(),
                );
                return match parsed {
                    Ok(p) => {
                        submit(lease, p, cx.responder());
                        Reply::Later
                    }
                    Err(e) => {
                        lease.stats().failed();
                        Reply::Response(error_reply(&e))
                    }
                };
            }
            Ok(Some(_)) | Ok(None) => {}
            Err(e) => return Reply::Response(error_reply(&e)),
        }
    }
    let responder = cx.responder();
    let repo = repo.clone();
    let owned = std::mem::take(req);
    rayon::spawn(move || {
        let lease = match lease_for(&repo, &owned) {
            Ok(l) => l,
            Err(e) => {
                let _ = responder.respond(error_reply(&e));
                return;
            }
        };
        if let Some(text) = lease.loaded.text.clone() {
            match parse_texts(&owned, repo.max_texts(), text_output(text.task)) {
                Ok(Some(t)) => return submit_texts(lease, &text, t, responder),
                Ok(None) => {}
                Err(e) => {
                    lease.stats().failed();
                    let _ = responder.respond(error_reply(&e));
                    return;
                }
            }
        }
        let parsed = parse_infer(
            lease.name(),
            &lease.loaded.meta,
            &owned,
            repo.max_input_bytes(),
        );
        match parsed {
            Ok(p) => submit(lease, p, responder),
            Err(e) => {
                lease.stats().failed();
                let _ = responder.respond(error_reply(&e));
            }
        }
    });
    Reply::Later
}

/// The name of the output a text model answers a `BYTES` request with:
/// `embedding` (its vectors), or for a classifier `scores` (each text's
/// label probabilities, in label order).
fn text_output(task: Task) -> &'static str {
    match task {
        // A reranker is refused before its texts are run.
        Task::Embed | Task::Rerank => "embedding",
        Task::Classify => "scores",
    }
}

/// A text request to a text model: one `BYTES` input of strings.
#[derive(Debug)]
struct TextInfer {
    texts: Vec<String>,
    binary: bool,
    id: Option<Value>,
}

/// The strings of a `BYTES` tensor in the binary extension: each element a
/// 4-byte little-endian length, then its bytes.
fn bytes_elements(mut b: &[u8], n: usize) -> Result<Vec<String>, Error> {
    let mut out = Vec::with_capacity(n.min(b.len() / 4));
    while !b.is_empty() {
        let (len, rest) = b
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("BYTES data: an element's 4-byte length is cut short"))?;
        let len = u32::from_le_bytes(*len) as usize;
        let (s, rest) = rest
            .split_at_checked(len)
            .ok_or_else(|| bad("BYTES data: an element is longer than the data left"))?;
        let s =
            std::str::from_utf8(s).map_err(|_| bad("BYTES data: an element is not UTF-8 text"))?;
        out.push(s.to_string());
        if out.len() > n {
            break;
        }
        b = rest;
    }
    if out.len() != n {
        return Err(bad(format!(
            "BYTES data holds {} elements; the shape needs {n}",
            out.len()
        )));
    }
    Ok(out)
}

/// A request body split at `Inference-Header-Content-Length` (the binary
/// tensor extension): the JSON head and the binary data after it (none
/// without the header).
fn split_body(req: &Request) -> Result<(&[u8], &[u8]), Error> {
    let body = req.body();
    let Some(v) = req.header_str(HEADER_LEN) else {
        return Ok((body, &[]));
    };
    let n: usize = v
        .trim()
        .parse()
        .map_err(|_| bad(format!("{HEADER_LEN}: {v:?} is not a number")))?;
    if n > body.len() {
        return Err(bad(format!(
            "{HEADER_LEN} is {n}, but the body has only {} bytes",
            body.len()
        )));
    }
    Ok(body.split_at(n))
}

/// A text model's request if it is one: a single `BYTES` input (any name)
/// of shape `[n]` or `[n, 1]` holding the texts, JSON or binary; the
/// answer is the output `output` ([`text_output`]), FP32 `[n, dim]`.
/// `None`: a tensor request, for the graph's own inputs.
fn parse_texts(req: &Request, max_texts: usize, output: &str) -> Result<Option<TextInfer>, Error> {
    let (head, binary) = split_body(req)?;
    let head =
        std::str::from_utf8(head).map_err(|_| bad("the request is not valid JSON: not UTF-8"))?;
    let top: InferHead<'_> = object(head, "the request must be a JSON object")?;
    let Some(inputs) = top.inputs else {
        return Ok(None);
    };
    let inputs: Vec<InputHead<'_>> = serde_json::from_str::<Vec<&RawValue>>(inputs.get())
        .ok()
        .map(|raws| {
            raws.iter()
                .map(|r| object(r.get(), "\"inputs\" must be an array of objects"))
                .collect()
        })
        .transpose()?
        .unwrap_or_default();
    let [inp] = inputs.as_slice() else {
        return Ok(None);
    };
    if inp.datatype.as_ref().and_then(Value::as_str) != Some("BYTES") {
        return Ok(None);
    }
    let shape: Vec<u64> = inp
        .shape
        .as_ref()
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .ok_or_else(|| bad("the BYTES input needs a \"shape\" of non-negative integers"))?;
    let n = match shape.as_slice() {
        [n] | [n, 1] => usize::try_from(*n).unwrap_or(usize::MAX),
        _ => {
            return Err(bad(format!(
                "the BYTES input's shape {shape:?} must be [n] or [n, 1]"
            )))
        }
    };
    if n == 0 || n > max_texts {
        return Err(bad(format!(
            "{n} texts; between 1 and {max_texts} per request"
        )));
    }
    let bin_size = inp
        .parameters
        .as_ref()
        .and_then(|p| p.get("binary_data_size"));
    let texts = match (bin_size, inp.data) {
        (Some(_), None) => bytes_elements(binary, n)?,
        (None, Some(d)) => {
            let v: Value =
                serde_json::from_str(d.get()).map_err(|e| bad(format!("BYTES data: {e}")))?;
            let mut flat = Vec::with_capacity(n);
            let mut stack = vec![&v];
            while let Some(x) = stack.pop() {
                match x {
                    Value::Array(items) => stack.extend(items.iter().rev()),
                    Value::String(s) => flat.push(s.clone()),
                    _ => return Err(bad("BYTES data must be strings")),
                }
            }
            if flat.len() != n {
                return Err(bad(format!(
                    "BYTES data holds {} strings; the shape needs {n}",
                    flat.len()
                )));
            }
            flat
        }
        _ => return Err(bad("the BYTES input needs \"data\" or binary_data_size")),
    };
    let all_binary = param_bool(top.parameters.as_ref(), "binary_data_output");
    let binary_out = match &top.outputs {
        None => all_binary,
        Some(Value::Array(list)) => {
            let mut b = all_binary;
            for o in list {
                if o.get("name").and_then(Value::as_str) != Some(output) {
                    return Err(bad(format!("a text request's only output is {output:?}")));
                }
                if let Some(x) = o
                    .get("parameters")
                    .and_then(|p| p.get("binary_data"))
                    .and_then(Value::as_bool)
                {
                    b = x;
                }
            }
            b
        }
        Some(_) => return Err(bad("\"outputs\" must be an array")),
    };
    Ok(Some(TextInfer {
        texts,
        binary: binary_out,
        id: top.id,
    }))
}

/// Tokenizes a text request (in parallel, here on the worker pool) and
/// queues it; the answer is the `embedding` output (a classifier's:
/// `scores`, the softmax of its logits, as `/predict` gives them).
fn submit_texts(lease: Lease, text: &TextModel, t: TextInfer, responder: Responder) {
    use rayon::prelude::*;
    if text.task == Task::Rerank {
        lease.stats().failed();
        let e = Error::BadInput(format!(
            "model {:?} is a reranker: it scores (query, text) pairs, not single texts; send them to POST /rerank",
            lease.name()
        ));
        let _ = responder.respond(error_reply(&e));
        return;
    }
    let tokens: Result<Vec<Tokens>, Error> = t
        .texts
        .par_iter()
        .enumerate()
        .map(|(i, s)| {
            text.encode(s, text.truncate)
                .map_err(|e| Error::BadInput(format!("text {i}: {e}")))
        })
        .collect();
    let tokens = match tokens {
        Ok(t) => t,
        Err(e) => {
            lease.stats().failed();
            let _ = responder.respond(error_reply(&e));
            return;
        }
    };
    let (name, version, normalize, dim, task) = (
        lease.name().to_string(),
        lease.loaded.version.clone(),
        text.normalize,
        text.dim,
        text.task,
    );
    let wanted = Wanted {
        outputs: vec![(0, t.binary)],
        id: t.id,
    };
    lease.submit_texts(
        tokens,
        Box::new(move |result| {
            let resp = match result {
                Ok(vectors) => {
                    let rows = vectors.len();
                    let mut flat = Vec::with_capacity(rows * dim);
                    for mut v in vectors {
                        if task == Task::Classify {
                            v = super::text::class_scores(&v, false);
                        } else if normalize {
                            super::text::normalize(&mut v);
                        }
                        flat.extend(v);
                    }
                    let out = Tensor {
                        name: text_output(task).into(),
                        shape: vec![rows, dim],
                        data: Data::F32(flat),
                    };
                    encode(&name, &version, &wanted, &[out])
                }
                Err(e) => error_reply(&e),
            };
            let _ = responder.respond(resp);
        }),
    );
}

/// Which outputs to return and how.
#[derive(Debug)]
struct Wanted {
    /// Indexes into the model's outputs, with "binary" for each.
    outputs: Vec<(usize, bool)>,
    id: Option<Value>,
}

/// A decoded inference request.
#[doc(hidden)]
#[derive(Debug)]
pub struct Parsed {
    /// The inputs, each checked against the model and decoded.
    pub inputs: Vec<Tensor>,
    wanted: Wanted,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadInput(msg.into())
}

fn param_bool(p: Option<&Value>, key: &str) -> bool {
    p.and_then(|p| p.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The top of an inference request. `inputs` stays raw text until the
/// shapes are known, and each input's `data` until its shape is checked:
/// nothing is built for the (possibly huge) data before it is decoded
/// straight into a typed buffer (SECURITY.md I2, I8).
#[derive(serde::Deserialize)]
struct InferHead<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    outputs: Option<Value>,
    #[serde(borrow, default)]
    inputs: Option<&'a RawValue>,
}

/// One entry of `inputs`; every field but `data` is small.
#[derive(serde::Deserialize)]
struct InputHead<'a> {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    datatype: Option<Value>,
    #[serde(default)]
    shape: Option<Value>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// Reads a JSON object into `T`; `what` says what was expected instead.
/// (serde's derived structs also read arrays, field by field: refused.)
fn object<'a, T: serde::Deserialize<'a>>(text: &'a str, what: &str) -> Result<T, Error> {
    match serde_json::from_str(text) {
        Ok(v) if text.trim_start().starts_with('{') => Ok(v),
        Err(e) if !e.is_data() => Err(bad(format!("the request is not valid JSON: {e}"))),
        Ok(_) | Err(_) => Err(bad(what.to_string())),
    }
}

/// Parses an inference request (JSON, or JSON + binary tensors) for model
/// `model` with metadata `meta`, checking each input against the model
/// before decoding its data. Public only for the fuzz targets.
#[doc(hidden)]
pub fn parse_infer(
    model: &str,
    meta: &Metadata,
    req: &Request,
    max_bytes: usize,
) -> Result<Parsed, Error> {
    let (head, mut binary) = split_body(req)?;
    let head =
        std::str::from_utf8(head).map_err(|_| bad("the request is not valid JSON: not UTF-8"))?;
    let top: InferHead<'_> = object(head, "the request must be a JSON object")?;
    let params = top.parameters.as_ref();
    if params.and_then(|p| p.get("classification")).is_some() {
        return Err(bad("the classification extension is not supported"));
    }
    let not_array = || bad("\"inputs\" must be an array of objects");
    let inputs_json: Vec<InputHead<'_>> = top
        .inputs
        .and_then(|raw| serde_json::from_str::<Vec<&RawValue>>(raw.get()).ok())
        .ok_or_else(not_array)?
        .into_iter()
        .map(|raw| object(raw.get(), "\"inputs\" must be an array of objects"))
        .collect::<Result<_, _>>()?;
    // Every input's dtype and shape is checked before any data is decoded.
    let mut checked = Vec::with_capacity(inputs_json.len());
    let mut seen = vec![false; meta.inputs.len()];
    for inp in &inputs_json {
        let name = inp
            .name
            .as_ref()
            .and_then(Value::as_str)
            .ok_or_else(|| bad("each input needs a \"name\""))?;
        let dt_name = inp
            .datatype
            .as_ref()
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("input {name:?} needs a \"datatype\"")))?;
        let dtype = DType::from_name(dt_name).ok_or_else(|| {
            bad(format!(
                "input {name:?}: datatype {dt_name:?} is not supported (BOOL, UINT8-64, INT8-64, FP32, FP64)"
            ))
        })?;
        let shape: Vec<usize> = inp
            .shape
            .as_ref()
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("input {name:?} needs a \"shape\" array")))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                bad(format!(
                    "input {name:?}: shape must hold non-negative integers"
                ))
            })?;
        let (idx, n) = meta.check_input(model, name, dtype, &shape, max_bytes)?;
        if std::mem::replace(&mut seen[idx], true) {
            return Err(bad(format!("input {name:?} appears twice")));
        }
        checked.push((name, dtype, dt_name, shape, n));
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(bad(format!(
            "input {:?} is missing",
            meta.inputs[missing].name
        )));
    }
    let mut inputs: Vec<Tensor> = Vec::with_capacity(checked.len());
    for (inp, (name, dtype, dt_name, shape, n)) in inputs_json.iter().zip(checked) {
        let bin_size = inp
            .parameters
            .as_ref()
            .and_then(|p| p.get("binary_data_size"));
        let data = match (bin_size, inp.data) {
            (Some(size), None) => {
                let size = size
                    .as_u64()
                    .and_then(|s| usize::try_from(s).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "input {name:?}: binary_data_size must be a non-negative integer"
                        ))
                    })?;
                if size != n * dtype.size() {
                    return Err(bad(format!(
                        "input {name:?}: binary_data_size {size} does not match shape {shape:?} of {dt_name} ({} bytes)",
                        n * dtype.size()
                    )));
                }
                if size > binary.len() {
                    return Err(bad(format!(
                        "input {name:?}: binary data is shorter than its binary_data_size {size}"
                    )));
                }
                let (mine, rest) = binary.split_at(size);
                binary = rest;
                Data::from_le_bytes(dtype, mine)
            }
            (None, Some(d)) => decode_data(name, dtype, Source::Raw(d.get()), n)?,
            (Some(_), Some(_)) => {
                return Err(bad(format!(
                    "input {name:?} has both \"data\" and binary_data_size"
                )))
            }
            (None, None) => return Err(bad(format!("input {name:?} has no \"data\""))),
        };
        inputs.push(Tensor {
            name: name.to_string(),
            shape,
            data,
        });
    }
    if !binary.is_empty() {
        return Err(bad(format!(
            "{} bytes of binary data are not claimed by any input",
            binary.len()
        )));
    }
    let all_binary = param_bool(params, "binary_data_output");
    let outs = &meta.outputs;
    let outputs = match &top.outputs {
        None => (0..outs.len()).map(|i| (i, all_binary)).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|o| {
                let name = o
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("each requested output needs a \"name\""))?;
                let i = outs
                    .iter()
                    .position(|s| s.name == name)
                    .ok_or_else(|| bad(format!("model {model:?} has no output {name:?}")))?;
                let p = o.get("parameters");
                if p.and_then(|p| p.get("classification")).is_some() {
                    return Err(bad("the classification extension is not supported"));
                }
                let binary = p
                    .and_then(|p| p.get("binary_data"))
                    .and_then(Value::as_bool)
                    .unwrap_or(all_binary);
                Ok((i, binary))
            })
            .collect::<Result<_, Error>>()?,
        Some(_) => return Err(bad("\"outputs\" must be an array")),
    };
    Ok(Parsed {
        inputs,
        wanted: Wanted {
            outputs,
            id: top.id,
        },
    })
}

fn submit(lease: Lease, p: Parsed, responder: Responder) {
    let name = lease.name().to_string();
    let version = lease.loaded.version.clone();
    let wanted = p.wanted;
    lease.submit(
        p.inputs,
        Box::new(move |result| {
            let big = result
                .as_ref()
                .is_ok_and(|o| o.iter().map(|t| t.data.len()).sum::<usize>() > INLINE_OUTPUT_ELEMS);
            let answer = move || {
                let resp = match result {
                    Ok(outs) => encode(&name, &version, &wanted, &outs),
                    Err(e) => error_reply(&e),
                };
                let _ = responder.respond(resp);
            };
            // Large outputs are encoded off the batcher thread, which has the next batch to run.
            if big {
                rayon::spawn(answer);
            } else {
                answer();
            }
        }),
    );
}

#[derive(Serialize)]
struct OutJson<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<FlatData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
}

#[derive(Serialize)]
struct RespJson<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
    outputs: Vec<OutJson<'a>>,
}

fn encode(name: &str, version: &str, wanted: &Wanted, outs: &[Tensor]) -> Response {
    let mut binary: Vec<u8> = Vec::new();
    let mut list = Vec::with_capacity(wanted.outputs.len());
    for &(i, as_binary) in &wanted.outputs {
        let Some(t) = outs.get(i) else { continue };
        let parameters = as_binary.then(|| {
            let before = binary.len();
            t.data.write_le_bytes(&mut binary);
            let mut m = Map::new();
            m.insert("binary_data_size".into(), (binary.len() - before).into());
            Value::Object(m)
        });
        list.push(OutJson {
            name: &t.name,
            datatype: t.dtype().name(),
            shape: &t.shape,
            data: (!as_binary).then_some(FlatData(&t.data)),
            parameters,
        });
    }
    let head = RespJson {
        model_name: name,
        model_version: version,
        id: wanted.id.as_ref(),
        outputs: list,
    };
    let mut body = match serde_json::to_vec(&head) {
        Ok(b) => b,
        Err(e) => return error_response(500, &format!("cannot encode the response: {e}")),
    };
    if binary.is_empty() {
        return Response::json(200, body);
    }
    let json_len = body.len();
    body.extend_from_slice(&binary);
    Response::with_body(200, "application/octet-stream", body)
        .header(HEADER_LEN, json_len.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn engine_errors_map_to_kserve_statuses() {
        let full = error_reply(&Error::QueueFull);
        assert_eq!(full.status(), 503);
        assert_eq!(full.get_header("retry-after"), Some("1"));
        assert_eq!(
            error_reply(&Error::QueueTimeout(Duration::from_millis(5))).status(),
            504
        );
        assert_eq!(error_reply(&Error::BadInput("x".into())).status(), 400);
        assert_eq!(error_reply(&Error::InvalidName("..".into())).status(), 400);
        assert_eq!(error_reply(&Error::NotFound("m".into())).status(), 404);
        let missing = error_reply(&Error::LibraryMissing {
            looked: "/home/op/.cache/conduit/onnxruntime/libonnxruntime.so.1.31.1 (the user cache)"
                .into(),
        });
        assert_eq!(missing.status(), 503);
        let body = std::str::from_utf8(missing.body()).unwrap();
        assert!(body.contains("scripts/fetch-onnxruntime"), "{body}");
        // SECURITY.md I10: the server's paths stay in its log.
        assert!(!body.contains("/home/op"), "{body}");
        let failed = error_reply(&Error::LoadFailed {
            path: "/opt/ort/libonnxruntime.so".into(),
            why: "undefined symbol".into(),
        });
        let body = std::str::from_utf8(failed.body()).unwrap();
        assert!(
            !body.contains("/opt/ort") && !body.contains("symbol"),
            "{body}"
        );
    }

    #[test]
    fn bytes_elements_are_length_prefixed_utf8() {
        let mut b = Vec::new();
        for s in ["hi", "", "日本"] {
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        assert_eq!(bytes_elements(&b, 3).unwrap(), vec!["hi", "", "日本"]);
        assert!(
            bytes_elements(&b, 2).is_err(),
            "more elements than the shape"
        );
        assert!(
            bytes_elements(&b, 4).is_err(),
            "fewer elements than the shape"
        );
        assert!(bytes_elements(&b[..b.len() - 1], 3).is_err(), "cut short");
        assert!(bytes_elements(&[1, 0], 1).is_err(), "a length cut short");
        assert!(bytes_elements(&[1, 0, 0, 0, 0xff], 1).is_err(), "not UTF-8");
        assert!(
            bytes_elements(&[0xff, 0xff, 0xff, 0xff], 1).is_err(),
            "a length past the data"
        );
    }

    fn meta() -> Metadata {
        let spec = |name: &str, shape: Vec<i64>| TensorSpec::new(name, DType::F32, shape, 64);
        Metadata {
            inputs: vec![spec("x", vec![-1, 2])],
            outputs: vec![spec("y", vec![-1])],
            max_batch_size: 4,
            text: None,
        }
    }

    #[test]
    fn infer_bodies_split_json_and_binary_without_a_loaded_model() {
        let json = br#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"parameters":{"binary_data_size":8}}]}"#;
        let mut body = json.to_vec();
        body.extend_from_slice(&1.0f32.to_le_bytes());
        body.extend_from_slice(&2.0f32.to_le_bytes());
        let len = json.len().to_string();
        let req = |len: &str, body: &[u8]| {
            Request::synthetic(
                Method::Post,
                "/v2/models/m/infer",
                &[(HEADER_LEN, len)],
                body,
            )
        };
        let p = parse_infer("m", &meta(), &req(&len, &body), 1024).unwrap();
        assert_eq!(p.inputs[0].data, Data::F32(vec![1.0, 2.0]));
        assert_eq!(p.wanted.outputs, vec![(0, false)]);
        let short = req(&len, &body[..body.len() - 1]);
        assert!(matches!(
            parse_infer("m", &meta(), &short, 1024),
            Err(Error::BadInput(_))
        ));
        assert!(matches!(
            parse_infer("m", &meta(), &req("999", &body), 1024),
            Err(Error::BadInput(_))
        ));
    }
}
