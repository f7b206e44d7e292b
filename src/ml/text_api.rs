//! The text APIs (adapter): OpenAI's `POST /v1/embeddings` and
//! `GET /v1/models`, and TEI's `POST /embed`, `POST /rerank`,
//! `POST /predict` and `POST /tokenize`, each with the error shape its
//! clients parse. Texts are tokenized on the worker pool (never on an I/O
//! loop), in parallel, then batched by tokens with every other request for
//! the model (`batcher`).
//!
//! Invariant: a bad request gets its API's error shape and status; nothing
//! else in the batch is disturbed.

use super::kserve::status_of;
use super::model::Task;
use super::repository::{Lease, Repository};
use super::text::{self, Piece, TextError, TextModel, Tokens};
use super::{Error, MlConfig};
use crate::http::{Cx, Method, Mode, Reply, Request, Responder, Response, Router};
use base64::Engine as _;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// Requests with more texts than this encode their answer off the batcher
/// thread (which has the next run to start).
const INLINE_ANSWER_TEXTS: usize = 16;
/// `Retry-After` seconds for a full queue.
const RETRY_AFTER_SECS: &str = "1";

/// What one text request may hold (`[ml]` config).
#[derive(Debug, Clone, Copy)]
struct Limits {
    texts: usize,
    text_bytes: usize,
    tokens: usize,
}

/// Registers the text routes.
pub fn routes(router: &mut Router, repo: Arc<Repository>, cfg: &MlConfig) {
    let limits = Limits {
        texts: cfg.max_texts_per_request,
        text_bytes: cfg.max_text_bytes,
        tokens: cfg.max_tokens_per_request,
    };
    let max_texts = cfg.max_texts_per_request;
    let max_bytes = usize::try_from(cfg.max_input_bytes).unwrap_or(usize::MAX);
    post(
        router,
        &repo,
        cfg.max_input_bytes,
        "/v1/embeddings",
        move |r, req, responder| openai_embeddings(r, req, responder, limits),
    );
    let r = repo.clone();
    router.route(
        Method::Get,
        "/v1/models",
        Mode::Inline,
        move |_: &mut Request, _: &mut Cx<'_>| {
            let data: Vec<Value> = r
                .names()
                .iter()
                .map(|n| json!({"id": n, "object": "model", "created": 0, "owned_by": "conduit"}))
                .collect();
            Reply::Response(Response::json(
                200,
                json!({"object": "list", "data": data}).to_string(),
            ))
        },
    );
    post(
        router,
        &repo,
        cfg.max_input_bytes,
        "/embed",
        move |r, req, responder| tei_embed(r, req, responder, limits),
    );
    post(
        router,
        &repo,
        cfg.max_input_bytes,
        "/rerank",
        move |r, req, responder| tei_rerank(r, req, responder, max_texts, max_bytes),
    );
    post(
        router,
        &repo,
        cfg.max_input_bytes,
        "/predict",
        move |r, req, responder| tei_predict(r, req, responder, limits),
    );
    let r = repo;
    router.route_with_limit(
        Method::Post,
        "/tokenize",
        Mode::Pool,
        cfg.max_tokenize_bytes.min(cfg.max_input_bytes),
        move |req: &mut Request, _: &mut Cx<'_>| {
            Reply::Response(tei_tokenize(&r, req, max_texts).unwrap_or_else(|f| f.tei()))
        },
    );
    // The connection layer's own refusals (a body over the route's limit:
    // 413; 408; bad chunking) in each API's error shape, which its
    // clients parse.
    router.error_bodies("/v1/", openai_http_error);
    for path in ["/embed", "/rerank", "/predict", "/tokenize"] {
        router.error_bodies(path, tei_http_error);
    }
}

/// Routes `POST path` (a body of at most `max_body_bytes`) to `f`,
/// on the worker pool; `f` answers through the responder.
fn post(
    router: &mut Router,
    repo: &Arc<Repository>,
    max_body_bytes: u64,
    path: &str,
    f: impl Fn(&Repository, &Request, Responder) + Send + Sync + 'static,
) {
    let repo = repo.clone();
    router.route_with_limit(
        Method::Post,
        path,
        Mode::Pool,
        max_body_bytes,
        move |req: &mut Request, cx: &mut Cx<'_>| {
            f(&repo, req, cx.responder());
            Reply::Later
        },
    );
}

/// The http layer's error `status` in OpenAI's shape.
fn openai_http_error(status: u16, reason: &str) -> Response {
    let body = json!({"error": {
        "message": reason, "type": "invalid_request_error", "param": null, "code": null,
    }});
    Response::json(status, body.to_string())
}

/// The http layer's error `status` in TEI's shape.
fn tei_http_error(status: u16, reason: &str) -> Response {
    Response::json(
        status,
        json!({"error": reason, "error_type": "Validation"}).to_string(),
    )
}

/// What went wrong, in terms both API shapes can express.
#[derive(Debug)]
struct Failure {
    status: u16,
    message: String,
    /// The request field at fault (OpenAI's `param`).
    param: Option<&'static str>,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invalid,
    NotFound,
    TooLong,
    Overloaded,
    Server,
}

impl Failure {
    fn invalid(param: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status: 400,
            message: message.into(),
            param: Some(param),
            kind: Kind::Invalid,
        }
    }

    fn from_engine(e: &Error) -> Failure {
        let status = status_of(e);
        let kind = match (e, status) {
            (Error::NotFound(_), _) => Kind::NotFound,
            (Error::QueueFull, _) => Kind::Overloaded,
            (_, 400..=499) => Kind::Invalid,
            _ => Kind::Server,
        };
        Failure {
            // OpenAI clients back off and retry on 429, not 503.
            status: if kind == Kind::Overloaded {
                429
            } else {
                status
            },
            message: e.client_message(),
            param: matches!(e, Error::NotFound(_) | Error::InvalidName(_)).then_some("model"),
            kind,
        }
    }

    /// Text `index` of the request field `param` cannot run.
    fn from_text(param: &'static str, index: usize, e: &TextError) -> Failure {
        match e {
            TextError::TooLong { .. } => Failure {
                status: 413,
                message: format!("{param}[{index}] has {e}; send it shorter or with truncation on"),
                param: Some(param),
                kind: Kind::TooLong,
            },
            TextError::Tokenizer(_) | TextError::BadId(_) => {
                Failure::invalid(param, format!("{param}[{index}]: {e}"))
            }
        }
    }

    /// OpenAI's `{"error": {"message", "type", "param", "code"}}`.
    fn openai(&self) -> Response {
        let (kind, code) = match self.kind {
            Kind::Invalid => ("invalid_request_error", Value::Null),
            Kind::NotFound => ("invalid_request_error", json!("model_not_found")),
            Kind::TooLong => ("invalid_request_error", json!("context_length_exceeded")),
            Kind::Overloaded => ("rate_limit_error", json!("rate_limit_exceeded")),
            Kind::Server => ("server_error", Value::Null),
        };
        let body = json!({"error": {
            "message": self.message, "type": kind, "param": self.param, "code": code,
        }});
        self.with_retry(Response::json(self.status, body.to_string()))
    }

    /// TEI's `{"error", "error_type"}` and its statuses (413 for what the
    /// limits refuse, 422 for what the tokenizer cannot take, 424 for a
    /// failed run).
    fn tei(&self) -> Response {
        let (status, kind) = match self.kind {
            Kind::Invalid => (
                if self.status == 400 { 422 } else { self.status },
                "Validation",
            ),
            Kind::NotFound => (404, "Validation"),
            Kind::TooLong => (413, "Validation"),
            Kind::Overloaded => (429, "Overloaded"),
            Kind::Server => (424, "Backend"),
        };
        let body = json!({"error": self.message, "error_type": kind});
        self.with_retry(Response::json(status, body.to_string()))
    }

    fn with_retry(&self, r: Response) -> Response {
        if self.kind == Kind::Overloaded {
            r.header("Retry-After", RETRY_AFTER_SECS)
        } else {
            r
        }
    }
}

/// A text model for `task` (any: `None`), leased, and its tokenizer.
fn text_model(
    repo: &Repository,
    name: &str,
    task: Option<Task>,
) -> Result<(Lease, Arc<TextModel>), Failure> {
    let lease = repo.lease(name).map_err(|e| Failure::from_engine(&e))?;
    let text = lease.loaded.text.clone().ok_or_else(|| {
        Failure::invalid(
            "model",
            format!("model {name:?} does not take text (it has no tokenizer.json)"),
        )
    })?;
    match task {
        Some(want) if want != text.task => {
            Err(Failure::invalid("model", wrong_task(name, want, text.task)))
        }
        _ => Ok((lease, text)),
    }
}

/// Why model `name`, which does `has`, cannot serve a route for `want`.
fn wrong_task(name: &str, want: Task, has: Task) -> String {
    let noun = |t: Task| match t {
        Task::Embed => "an embedding model",
        Task::Rerank => "a reranker",
        Task::Classify => "a classifier",
    };
    let does = match has {
        Task::Embed => "it makes embeddings (/embed, /v1/embeddings)",
        Task::Rerank => "it scores (query, text) pairs on /rerank and makes no embeddings",
        Task::Classify => "it labels texts on /predict and makes no embeddings",
    };
    let needs = match want {
        Task::Embed => "embeddings need a model whose config.toml says task = \"embed\" (the default)",
        Task::Rerank => "/rerank needs a cross-encoder whose config.toml says task = \"rerank\"",
        Task::Classify => "/predict needs a sequence classifier whose config.toml says task = \"classify\" and names its labels",
    };
    format!(
        "model {name:?} is {} (task = \"{}\"), not {}: {does}; {needs}",
        noun(has),
        has.name(),
        noun(want)
    )
}

/// What a request asks to run.
enum Inputs {
    Texts(Vec<String>),
    Ids(Vec<Vec<u32>>),
    /// Texts and (text, text_pair) pairs (`/predict`).
    Sequences(Vec<Sequence>),
}

impl Inputs {
    fn len(&self) -> usize {
        match self {
            Inputs::Texts(t) => t.len(),
            Inputs::Ids(i) => i.len(),
            Inputs::Sequences(s) => s.len(),
        }
    }

    /// The bytes of each input to tokenize (none for token ids).
    fn bytes(&self) -> Vec<usize> {
        match self {
            Inputs::Texts(t) => t.iter().map(String::len).collect(),
            Inputs::Ids(_) => Vec::new(),
            Inputs::Sequences(s) => s.iter().map(Sequence::bytes).collect(),
        }
    }
}

/// One input of a classifier: a text, or a (text, text_pair) pair that
/// the tokenizer's pair template joins.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sequence {
    Single(String),
    Pair(String, String),
}

impl Sequence {
    fn bytes(&self) -> usize {
        match self {
            Sequence::Single(t) => t.len(),
            Sequence::Pair(a, b) => a.len().saturating_add(b.len()),
        }
    }
}

fn token_ids(v: &Value) -> Option<Vec<u32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_u64().and_then(|n| u32::try_from(n).ok()))
        .collect()
}

/// OpenAI's `input`: a string, strings, token ids, or lists of token ids.
fn openai_inputs(v: Option<&Value>) -> Result<Inputs, Failure> {
    let bad = || {
        Failure::invalid(
            "input",
            "input must be a string, an array of strings, an array of token ids, or an array of arrays of token ids",
        )
    };
    match v {
        None => Err(Failure::invalid("input", "input is required")),
        Some(Value::String(s)) => Ok(Inputs::Texts(vec![s.clone()])),
        Some(Value::Array(items)) if items.is_empty() => {
            Err(Failure::invalid("input", "input must not be empty"))
        }
        Some(Value::Array(items)) => match items.first() {
            Some(Value::String(_)) => items
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .map(Inputs::Texts)
                .ok_or_else(bad),
            Some(Value::Number(_)) => token_ids(&Value::Array(items.clone()))
                .map(|ids| Inputs::Ids(vec![ids]))
                .ok_or_else(bad),
            Some(Value::Array(_)) => items
                .iter()
                .map(token_ids)
                .collect::<Option<_>>()
                .map(Inputs::Ids)
                .ok_or_else(bad),
            _ => Err(bad()),
        },
        Some(_) => Err(bad()),
    }
}

/// Tokenizes `inputs` (the request field `param`) for `text` in parallel,
/// within `limits`; the first failure names its index.
fn tokenize(
    text: &TextModel,
    param: &'static str,
    inputs: Inputs,
    truncate: bool,
    limits: Limits,
) -> Result<Vec<Tokens>, Failure> {
    let too_many = |what: String| Failure {
        status: 413,
        message: what,
        param: Some(param),
        kind: Kind::TooLong,
    };
    if inputs.len() > limits.texts {
        return Err(Failure::invalid(
            param,
            format!(
                "{} inputs; at most {} per request",
                inputs.len(),
                limits.texts
            ),
        ));
    }
    if let Some((i, n)) = inputs
        .bytes()
        .into_iter()
        .enumerate()
        .find(|&(_, n)| n > limits.text_bytes)
    {
        return Err(too_many(format!(
            "{param}[{i}] is {n} bytes; at most {} per text",
            limits.text_bytes
        )));
    }
    let out: Vec<Result<Tokens, TextError>> = match inputs {
        Inputs::Texts(texts) => texts.par_iter().map(|t| text.encode(t, truncate)).collect(),
        Inputs::Ids(ids) => ids
            .into_par_iter()
            .map(|i| text.check_ids(i, truncate))
            .collect(),
        Inputs::Sequences(seqs) => seqs
            .par_iter()
            .map(|s| match s {
                Sequence::Single(t) => text.encode(t, truncate),
                Sequence::Pair(a, b) => text.encode_pair(a, b, truncate),
            })
            .collect(),
    };
    let tokens: Vec<Tokens> = out
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| Failure::from_text(param, i, &e)))
        .collect::<Result<_, _>>()?;
    let used: usize = tokens.iter().map(Tokens::len).sum();
    if used > limits.tokens {
        return Err(too_many(format!(
            "{used} tokens in the request; at most {} per request",
            limits.tokens
        )));
    }
    Ok(tokens)
}

/// Reads a JSON body into `T`, or the API's 400.
fn body<'a, T: Deserialize<'a>>(req: &'a Request) -> Result<T, Failure> {
    serde_json::from_slice(req.body())
        .map_err(|e| Failure::invalid("body", format!("the body is not a valid request: {e}")))
}

#[derive(Deserialize)]
struct EmbeddingsRequest {
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<u64>,
}

/// `POST /v1/embeddings`.
fn openai_embeddings(repo: &Repository, req: &Request, responder: Responder, limits: Limits) {
    let prepared = (|| {
        let r: EmbeddingsRequest = body(req)?;
        let name = r
            .model
            .ok_or_else(|| Failure::invalid("model", "model is required"))?;
        let base64 = match r.encoding_format.as_deref() {
            None | Some("float") => false,
            Some("base64") => true,
            Some(other) => {
                return Err(Failure::invalid(
                    "encoding_format",
                    format!("encoding_format {other:?} is not float or base64"),
                ))
            }
        };
        let inputs = openai_inputs(r.input.as_ref())?;
        let (lease, text) = text_model(repo, &name, Some(Task::Embed))?;
        let dims = match r.dimensions.map(|d| usize::try_from(d).unwrap_or(usize::MAX)) {
            None => text.dim,
            Some(d) if d == text.dim => d,
            Some(d) if d >= 1 && d < text.dim && text.truncate_dimensions => d,
            Some(d) if d >= 1 && d < text.dim => {
                return Err(Failure::invalid(
                    "dimensions",
                    format!(
                        "model {name:?} makes {}-dimensional vectors and was not trained to be cut shorter (config.toml: truncate_dimensions)",
                        text.dim
                    ),
                ))
            }
            Some(d) => {
                return Err(Failure::invalid(
                    "dimensions",
                    format!("dimensions {d}: model {name:?} makes {}-dimensional vectors", text.dim),
                ))
            }
        };
        let tokens = tokenize(&text, "input", inputs, text.truncate, limits)?;
        let used: usize = tokens.iter().map(Tokens::len).sum();
        Ok((lease, tokens, (name, base64, dims, text.normalize, used)))
    })();
    submit(
        Api::OpenAi,
        responder,
        prepared,
        |vectors, (name, base64, dims, normalize, used)| {
            openai_response(&name, vectors, dims, normalize, base64, used)
        },
    );
}

/// The API a text route speaks: the shape of its errors.
#[derive(Clone, Copy)]
enum Api {
    OpenAi,
    Tei,
}

/// Answers a text request that `prepared` (the lease, the tokens, what
/// the answer needs) or its failure: the tokens go to the model's batcher
/// and `finish` makes the answer of its outputs; a failure, the engine's
/// included, is answered in `api`'s shape.
fn submit<P: Send + 'static>(
    api: Api,
    responder: Responder,
    prepared: Result<(Lease, Vec<Tokens>, P), Failure>,
    finish: impl FnOnce(Vec<Vec<f32>>, P) -> Response + Send + 'static,
) {
    let shape = move |f: Failure| match api {
        Api::OpenAi => f.openai(),
        Api::Tei => f.tei(),
    };
    let (lease, tokens, p) = match prepared {
        Ok(x) => x,
        Err(f) => {
            let _ = responder.respond(shape(f));
            return;
        }
    };
    let count = tokens.len();
    lease.submit_texts(
        tokens,
        Box::new(move |result| {
            answer(count, responder, move || match result {
                Ok(outputs) => finish(outputs, p),
                Err(e) => shape(Failure::from_engine(&e)),
            })
        }),
    );
}

/// Sends what `make` builds: at once for small answers, from the worker
/// pool for large ones (their encoding would hold up the batcher thread).
fn answer(texts: usize, responder: Responder, make: impl FnOnce() -> Response + Send + 'static) {
    if texts > INLINE_ANSWER_TEXTS {
        rayon::spawn(move || {
            let _ = responder.respond(make());
        });
    } else {
        let _ = responder.respond(make());
    }
}

/// One vector of an OpenAI answer. Vectors are serialized from `f32` (the
/// shortest text that reads back the same `f32`), not through `Value`'s
/// `f64`, which would double their size.
#[derive(Serialize)]
struct EmbeddingOut {
    object: &'static str,
    index: usize,
    embedding: Embedding,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Embedding {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: usize,
    total_tokens: usize,
}

#[derive(Serialize)]
struct EmbeddingsOut<'a> {
    object: &'static str,
    data: Vec<EmbeddingOut>,
    model: &'a str,
    usage: Usage,
}

fn openai_response(
    model: &str,
    vectors: Vec<Vec<f32>>,
    dims: usize,
    normalize: bool,
    base64: bool,
    tokens: usize,
) -> Response {
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, mut v)| {
            // Matryoshka: the first `dims` values, renormalized.
            v.truncate(dims);
            if normalize {
                text::normalize(&mut v);
            }
            let embedding = if base64 {
                // OpenAI's base64 format: the float32 values, little-endian.
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Embedding::Floats(v)
            };
            EmbeddingOut {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    let out = EmbeddingsOut {
        object: "list",
        data,
        model,
        usage: Usage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    };
    json_response(&out)
}

/// A serialized 200, or a 500 if it cannot be (it always can).
fn json_response<T: Serialize>(v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => Response::json(200, b),
        Err(e) => Response::json(500, json!({"error": e.to_string()}).to_string()),
    }
}

#[derive(Deserialize)]
struct EmbedRequest {
    #[serde(default)]
    inputs: Option<Value>,
    #[serde(default)]
    normalize: Option<bool>,
    #[serde(default)]
    truncate: Option<bool>,
    /// Conduit's extension: which text model (default: the only one).
    #[serde(default)]
    model: Option<String>,
}

/// The text model a TEI request means: the one it names, else the only one
/// for `task` (any task: `None`).
fn default_text_model(
    repo: &Repository,
    named: Option<String>,
    task: Option<Task>,
) -> Result<String, Failure> {
    if let Some(n) = named {
        return Ok(n);
    }
    let what = match task {
        Some(Task::Embed) => "embedding model",
        Some(Task::Rerank) => "rerank model",
        Some(Task::Classify) => "classify model",
        None => "text model",
    };
    match repo.text_names(task).as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Failure::invalid(
            "model",
            format!("this server has no {what}"),
        )),
        many => Err(Failure::invalid(
            "model",
            format!(
                "several {what}s ({}); name one in \"model\"",
                many.join(", ")
            ),
        )),
    }
}

/// `POST /embed` (TEI).
fn tei_embed(repo: &Repository, req: &Request, responder: Responder, limits: Limits) {
    let prepared = (|| -> Result<_, Failure> {
        let r: EmbedRequest = body(req)?;
        let inputs = Inputs::Texts(tei_inputs(r.inputs, limits.texts)?);
        let name = default_text_model(repo, r.model, Some(Task::Embed))?;
        let (lease, text) = text_model(repo, &name, Some(Task::Embed))?;
        let truncate = r.truncate.unwrap_or(text.truncate);
        let tokens = tokenize(&text, "inputs", inputs, truncate, limits)?;
        Ok((lease, tokens, r.normalize.unwrap_or(text.normalize)))
    })();
    submit(Api::Tei, responder, prepared, |mut vectors, normalize| {
        if normalize {
            vectors.iter_mut().for_each(|v| text::normalize(v));
        }
        json_response(&vectors)
    });
}

/// TEI's `inputs`: a string or a non-empty array of at most `max_texts` strings.
fn tei_inputs(v: Option<Value>, max_texts: usize) -> Result<Vec<String>, Failure> {
    let bad = || Failure::invalid("inputs", "inputs must be a string or an array of strings");
    let texts = match v {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(Failure::invalid("inputs", "inputs must not be empty"))
        }
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|x| match x {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if texts.len() > max_texts {
        return Err(Failure::invalid(
            "inputs",
            format!("{} inputs; at most {max_texts} per request", texts.len()),
        ));
    }
    Ok(texts)
}

#[derive(Deserialize)]
struct RerankRequest {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    texts: Option<Vec<String>>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    raw_scores: bool,
    #[serde(default)]
    return_text: bool,
    #[serde(default)]
    truncation_direction: Option<String>,
    /// Conduit's extension: which rerank model (default: the only one).
    #[serde(default)]
    model: Option<String>,
}

/// One entry of a `/rerank` answer (TEI's `Rank`).
#[derive(Debug, Serialize)]
struct Rank {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    score: f32,
}

/// `POST /rerank` (TEI): every text scored against the query by a
/// cross-encoder, answered sorted by score, highest first. The query is
/// tokenized once per text, so the query's bytes times the texts, plus the
/// texts, may be at most `max_bytes` (the body limit): a request makes at
/// most twice a body's tokenizing work.
fn tei_rerank(
    repo: &Repository,
    req: &Request,
    responder: Responder,
    max_texts: usize,
    max_bytes: usize,
) {
    let prepared = (|| -> Result<_, Failure> {
        let (r, query, texts) = rerank_request(req, max_texts, max_bytes)?;
        let name = default_text_model(repo, r.model, Some(Task::Rerank))?;
        let (lease, text) = text_model(repo, &name, Some(Task::Rerank))?;
        let truncate = r.truncate.unwrap_or(text.truncate);
        let pairs: Vec<Result<Tokens, TextError>> = texts
            .par_iter()
            .map(|t| text.encode_pair(&query, t, truncate))
            .collect();
        let tokens = pairs
            .into_iter()
            .enumerate()
            .map(|(i, p)| p.map_err(|e| Failure::from_text("texts", i, &e)))
            .collect::<Result<Vec<_>, _>>()?;
        let texts = r.return_text.then_some(texts);
        Ok((lease, tokens, (texts, r.raw_scores)))
    })();
    submit(Api::Tei, responder, prepared, |logits, (texts, raw)| {
        ranks(&logits, texts, raw).map_or_else(|f| f.tei(), |r| json_response(&r))
    });
}

/// A `/rerank` body, read and checked before any model is touched: the
/// request, its query and its texts.
fn rerank_request(
    req: &Request,
    max_texts: usize,
    max_bytes: usize,
) -> Result<(RerankRequest, String, Vec<String>), Failure> {
    let mut r: RerankRequest = body(req)?;
    let query = r
        .query
        .take()
        .ok_or_else(|| Failure::invalid("query", "query is required"))?;
    let texts = r
        .texts
        .take()
        .ok_or_else(|| Failure::invalid("texts", "texts is required"))?;
    if texts.is_empty() {
        return Err(Failure::invalid("texts", "texts must not be empty"));
    }
    if texts.len() > max_texts {
        return Err(Failure::invalid(
            "texts",
            format!("{} texts; at most {max_texts} per request", texts.len()),
        ));
    }
    let work = text::pair_work(&query, &texts);
    if work > max_bytes {
        return Err(Failure {
            status: 413,
            message: format!(
                "the query ({} bytes) paired with each of {} texts is {work} bytes to tokenize, over the limit of {max_bytes}; send a shorter query or fewer texts",
                query.len(),
                texts.len()
            ),
            param: Some("query"),
            kind: Kind::TooLong,
        });
    }
    check_direction(r.truncation_direction.as_deref())?;
    Ok((r, query, texts))
}

/// TEI's `truncation_direction`: only `right` (the default) is served.
fn check_direction(d: Option<&str>) -> Result<(), Failure> {
    match d {
        None => Ok(()),
        Some(d) if d.eq_ignore_ascii_case("right") => Ok(()),
        Some(d) => Err(Failure::invalid(
            "truncation_direction",
            format!("truncation_direction {d:?}: only \"right\" (the default) is supported"),
        )),
    }
}

/// The ranks of one answer: each pair's logit (its one value), or its
/// sigmoid unless `raw`, sorted by score, highest first (ties in request
/// order); `texts` are echoed when the request asked.
fn ranks(logits: &[Vec<f32>], texts: Option<Vec<String>>, raw: bool) -> Result<Vec<Rank>, Failure> {
    let mut texts = texts.map(Vec::into_iter);
    let mut out = Vec::with_capacity(logits.len());
    for (index, v) in logits.iter().enumerate() {
        let logit = v.first().copied().unwrap_or(f32::NAN);
        let score = if raw { logit } else { text::sigmoid(logit) };
        if score.is_nan() {
            return Err(Failure {
                status: 500,
                message: format!("the model gave no score for texts[{index}] (NaN)"),
                param: None,
                kind: Kind::Server,
            });
        }
        let text = texts.as_mut().and_then(Iterator::next);
        out.push(Rank { index, text, score });
    }
    // Stable: equal scores keep the request's order.
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(out)
}

#[derive(Deserialize)]
struct PredictRequest {
    #[serde(default)]
    inputs: Option<Value>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    raw_scores: bool,
    #[serde(default)]
    truncation_direction: Option<String>,
    /// Conduit's extension: which classify model (default: the only one).
    #[serde(default)]
    model: Option<String>,
}

/// One label's score in a `/predict` answer (TEI's `Prediction`).
#[derive(Debug, Serialize)]
struct Prediction<'a> {
    score: f32,
    label: &'a str,
}

/// TEI's `/predict` `inputs`: a string; `[text]` or `[text, text_pair]`,
/// one input; or a batch of those, `[[text], [text, text_pair], ...]`.
/// Returns the inputs and whether they came as a batch (answered with a
/// list per input; one input is answered with its list alone).
fn predict_inputs(v: Option<Value>, max_texts: usize) -> Result<(Vec<Sequence>, bool), Failure> {
    // 1 or 2 strings: a text or a pair.
    let sequence = |items: Vec<Value>| -> Option<Sequence> {
        let mut it = items.into_iter().map(|x| match x {
            Value::String(s) => Some(s),
            _ => None,
        });
        match (it.next(), it.next(), it.next()) {
            (Some(Some(a)), None, None) => Some(Sequence::Single(a)),
            (Some(Some(a)), Some(Some(b)), None) => Some(Sequence::Pair(a, b)),
            _ => None,
        }
    };
    match v {
        None => Err(Failure::invalid("inputs", "inputs is required")),
        Some(Value::String(s)) => Ok((vec![Sequence::Single(s)], false)),
        Some(Value::Array(items)) => match items.first() {
            None => Err(Failure::invalid("inputs", "inputs must not be empty")),
            // TEI: an array of strings is one input, not a batch.
            Some(Value::String(_)) => sequence(items).map(|s| (vec![s], false)).ok_or_else(|| {
                Failure::invalid(
                    "inputs",
                    "an array of strings is one input, a text or a (text, text_pair) pair, so it holds 1 or 2 strings; send several inputs as an array of arrays: [[\"a\"], [\"b\"]]",
                )
            }),
            Some(Value::Array(_)) => {
                if items.len() > max_texts {
                    return Err(Failure::invalid(
                        "inputs",
                        format!("{} inputs; at most {max_texts} per request", items.len()),
                    ));
                }
                let batch = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| match x {
                        Value::Array(a) => sequence(a),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        Failure::invalid(
                            "inputs",
                            format!("inputs[{i}] must be [text] or [text, text_pair]"),
                        )
                    }))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((batch, true))
            }
            Some(_) => Err(predict_shape()),
        },
        Some(_) => Err(predict_shape()),
    }
}

fn predict_shape() -> Failure {
    Failure::invalid(
        "inputs",
        "inputs must be a string, [text] or [text, text_pair], or an array of those",
    )
}

/// Each input's labels with their scores (softmax, a one-label model's
/// sigmoid, or with `raw` the logits), highest first (ties in label order).
fn predictions<'a>(
    labels: &'a [String],
    logits: &[Vec<f32>],
    raw: bool,
) -> Result<Vec<Vec<Prediction<'a>>>, Failure> {
    logits
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let scores = text::class_scores(v, raw);
            if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
                return Err(Failure {
                    status: 500,
                    message: format!("the model gave no scores for inputs[{i}] (NaN)"),
                    param: None,
                    kind: Kind::Server,
                });
            }
            Ok(text::by_score(&scores)
                .into_iter()
                .map(|k| Prediction {
                    score: scores[k],
                    label: &labels[k],
                })
                .collect())
        })
        .collect()
}

/// `POST /predict` (TEI): each input's labels, scored by a sequence
/// classifier, sorted by score, highest first.
fn tei_predict(repo: &Repository, req: &Request, responder: Responder, limits: Limits) {
    let prepared = (|| -> Result<_, Failure> {
        let r: PredictRequest = body(req)?;
        let (inputs, batch) = predict_inputs(r.inputs, limits.texts)?;
        check_direction(r.truncation_direction.as_deref())?;
        let name = default_text_model(repo, r.model, Some(Task::Classify))?;
        let (lease, text) = text_model(repo, &name, Some(Task::Classify))?;
        let truncate = r.truncate.unwrap_or(text.truncate);
        let inputs = Inputs::Sequences(inputs);
        let tokens = tokenize(&text, "inputs", inputs, truncate, limits)?;
        Ok((lease, tokens, (text.labels.clone(), batch, r.raw_scores)))
    })();
    submit(
        Api::Tei,
        responder,
        prepared,
        |logits, (labels, batch, raw)| match predictions(&labels, &logits, raw) {
            Ok(p) => match (batch, p.as_slice()) {
                (false, [one]) => json_response(one),
                _ => json_response(&p),
            },
            Err(f) => f.tei(),
        },
    );
}

#[derive(Deserialize)]
struct TokenizeRequest {
    #[serde(default)]
    inputs: Option<Value>,
    #[serde(default = "yes")]
    add_special_tokens: bool,
    /// Conduit's extension: which text model (default: the only one).
    #[serde(default)]
    model: Option<String>,
}

fn yes() -> bool {
    true
}

/// One token of a `/tokenize` answer (TEI's `SimpleToken`).
#[derive(Serialize)]
struct SimpleToken {
    id: u32,
    text: String,
    special: bool,
    start: Option<usize>,
    stop: Option<usize>,
}

impl From<Piece> for SimpleToken {
    fn from(p: Piece) -> SimpleToken {
        SimpleToken {
            id: p.id,
            text: p.text,
            special: p.special,
            start: p.span.map(|s| s.0),
            stop: p.span.map(|s| s.1),
        }
    }
}

/// `POST /tokenize` (TEI): each input's tokens, never truncated, a list
/// per input even for one string.
fn tei_tokenize(repo: &Repository, req: &Request, max_texts: usize) -> Result<Response, Failure> {
    let r: TokenizeRequest = body(req)?;
    let inputs = tei_inputs(r.inputs, max_texts)?;
    let name = default_text_model(repo, r.model, None)?;
    let (_lease, text) = text_model(repo, &name, None)?;
    let special = r.add_special_tokens;
    let all: Vec<Result<Vec<Piece>, TextError>> =
        inputs.par_iter().map(|t| text.pieces(t, special)).collect();
    let out = all
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            p.map(|ps| ps.into_iter().map(SimpleToken::from).collect::<Vec<_>>())
                .map_err(|e| Failure::from_text("inputs", i, &e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json_response(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predict_inputs_take_teis_shapes() {
        let single = |s: &str| Sequence::Single(s.into());
        let pair = |a: &str, b: &str| Sequence::Pair(a.into(), b.into());
        let parse = |v: Value| predict_inputs(Some(v), 4);
        assert_eq!(parse(json!("a")).unwrap(), (vec![single("a")], false));
        // An array of strings is one input: a text or a pair.
        assert_eq!(parse(json!(["a"])).unwrap(), (vec![single("a")], false));
        assert_eq!(
            parse(json!(["a", "b"])).unwrap(),
            (vec![pair("a", "b")], false)
        );
        assert_eq!(
            parse(json!([["a"], ["b", "c"]])).unwrap(),
            (vec![single("a"), pair("b", "c")], true)
        );
        assert_eq!(parse(json!([["a"]])).unwrap(), (vec![single("a")], true));
        for (bad, want) in [
            (json!([]), "must not be empty"),
            (json!(["a", "b", "c"]), "array of arrays"),
            (json!(["a", 1]), "array of arrays"),
            (json!([["a"], "b"]), "inputs[1]"),
            (json!([["a"], []]), "inputs[1]"),
            (json!([["a", "b", "c"]]), "inputs[0]"),
            (json!([["a"], ["b"], ["c"], ["d"], ["e"]]), "at most 4"),
            (json!(3), "must be a string"),
            (json!([{"text": "a"}]), "must be a string"),
        ] {
            let f = parse(bad.clone()).unwrap_err();
            assert_eq!(f.param, Some("inputs"), "{bad}");
            assert!(f.message.contains(want), "{bad}: {}", f.message);
        }
        assert!(predict_inputs(None, 4).is_err());
    }

    #[test]
    fn predictions_name_every_label_best_first() {
        let labels: Vec<String> = ["negative", "neutral", "positive"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = predictions(&labels, &[vec![-4.0, 1.0, 4.0], vec![0.0, 1.0, 0.0]], false).unwrap();
        let names: Vec<&str> = p[0].iter().map(|x| x.label).collect();
        assert_eq!(names, ["positive", "neutral", "negative"]);
        let sum: f32 = p[1].iter().map(|x| x.score).sum();
        assert!((sum - 1.0).abs() < 1e-6);
        // Ties keep label order.
        assert_eq!(p[1][1].label, "negative");
        let raw = predictions(&labels, &[vec![-4.0, 1.0, 4.0]], true).unwrap();
        assert_eq!(
            serde_json::to_string(&raw[0]).unwrap(),
            r#"[{"score":4.0,"label":"positive"},{"score":1.0,"label":"neutral"},{"score":-4.0,"label":"negative"}]"#
        );
        let nan = predictions(&labels, &[vec![0.0, f32::NAN, 0.0]], false).unwrap_err();
        assert_eq!(nan.kind, Kind::Server);
        assert!(nan.message.contains("inputs[0]"), "{}", nan.message);
    }

    #[test]
    fn a_route_for_another_task_says_what_the_model_is_and_what_it_needs() {
        let m = wrong_task("m", Task::Classify, Task::Embed);
        assert!(
            m.contains("is an embedding model")
                && m.contains("not a classifier")
                && m.contains("/predict"),
            "{m}"
        );
        let m = wrong_task("m", Task::Embed, Task::Rerank);
        assert!(
            m.contains("is a reranker") && m.contains("makes no embeddings"),
            "{m}"
        );
        let m = wrong_task("m", Task::Rerank, Task::Classify);
        assert!(
            m.contains("is a classifier") && m.contains("not a reranker"),
            "{m}"
        );
    }

    #[test]
    fn ranks_are_sorted_by_score_with_ties_in_request_order() {
        let logits = vec![vec![-1.0], vec![3.0], vec![-1.0], vec![0.0]];
        let texts = Some(vec!["a".into(), "b".into(), "c".into(), "d".into()]);
        let r = ranks(&logits, texts, false).unwrap();
        let order: Vec<usize> = r.iter().map(|r| r.index).collect();
        assert_eq!(order, vec![1, 3, 0, 2]);
        assert_eq!(r[1].score, 0.5, "sigmoid(0)");
        assert_eq!(r[0].text.as_deref(), Some("b"));
        let raw = ranks(&logits, None, true).unwrap();
        assert_eq!(raw[0].score, 3.0);
        assert!(raw.iter().all(|r| r.text.is_none()));
        assert_eq!(
            serde_json::to_string(&raw[0]).unwrap(),
            r#"{"index":1,"score":3.0}"#
        );
        let nan = ranks(&[vec![1.0], vec![f32::NAN]], None, false).unwrap_err();
        assert_eq!(nan.kind, Kind::Server);
        assert!(nan.message.contains("texts[1]"), "{}", nan.message);
    }
}
