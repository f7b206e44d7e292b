//! The text APIs (adapter): OpenAI's `POST /v1/embeddings` and
//! `GET /v1/models`, and TEI's `POST /embed`, `POST /rerank`,
//! `POST /predict` and `POST /tokenize`, each with the error shape its
//! clients parse. Texts are tokenized on the worker pool (never on an I/O
//! loop), in parallel, then batched by tokens with every other request for
//! the model (`batcher`). This file holds what the routes share (limits,
//! model choice, tokenizing, the failure type, answering); `openai.rs` and
//! `tei.rs` each hold one API's request and answer shapes.
//!
//! Invariant: a bad request gets its API's error shape and status; nothing
//! else in the batch is disturbed.

mod openai;
mod tei;

use crate::http::{Cx, Method, Mode, Reply, Request, Responder, Response, Router};
use crate::ml::kserve::status_of;
use crate::ml::model::Task;
use crate::ml::repository::{Lease, Repository};
use crate::ml::text::{TextError, TextModel, Tokens};
use crate::ml::{Error, MlConfig};
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
        move |r, req, responder| openai::openai_embeddings(r, req, responder, limits),
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
        move |r, req, responder| tei::tei_embed(r, req, responder, limits),
    );
    post(
        router,
        &repo,
        cfg.max_input_bytes,
        "/rerank",
        move |r, req, responder| tei::tei_rerank(r, req, responder, max_texts, max_bytes),
    );
    post(
        router,
        &repo,
        cfg.max_input_bytes,
        "/predict",
        move |r, req, responder| tei::tei_predict(r, req, responder, limits),
    );
    let r = repo;
    router.route_with_limit(
        Method::Post,
        "/tokenize",
        Mode::Pool,
        cfg.max_tokenize_bytes.min(cfg.max_input_bytes),
        move |req: &mut Request, _: &mut Cx<'_>| {
            Reply::Response(tei::tei_tokenize(&r, req, max_texts).unwrap_or_else(|f| f.tei()))
        },
    );
    // The connection layer's own refusals (a body over the route's limit:
    // 413; 408; bad chunking) in each API's error shape, which its
    // clients parse.
    router.error_bodies("/v1/", openai::openai_http_error);
    for path in ["/embed", "/rerank", "/predict", "/tokenize"] {
        router.error_bodies(path, tei::tei_http_error);
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
        let kind = match e {
            Error::NotFound(_) => Kind::NotFound,
            Error::QueueFull => Kind::Overloaded,
            Error::LibraryMissing { .. }
            | Error::LoadFailed { .. }
            | Error::InvalidName(_)
            | Error::VersionNotFound { .. }
            | Error::ModelLoad { .. }
            | Error::Unavailable(_)
            | Error::BadInput(_)
            | Error::QueueTimeout(_)
            | Error::Forbidden(_)
            | Error::NotJson
            | Error::Inference(_) => {
                // The status says whose fault it is.
                if (400..500).contains(&status) {
                    Kind::Invalid
                } else {
                    Kind::Server
                }
            }
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
    if let Some(want) = task.filter(|&want| want != text.task) {
        return Err(Failure::invalid("model", wrong_task(name, want, text.task)));
    }
    Ok((lease, text))
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

/// A serialized 200, or a 500 if it cannot be (it always can).
fn json_response<T: Serialize>(v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => Response::json(200, b),
        Err(e) => Response::json(500, json!({"error": e.to_string()}).to_string()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
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
}
