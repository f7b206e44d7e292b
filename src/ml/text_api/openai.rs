//! OpenAI's embeddings API: `POST /v1/embeddings` (its request, answer
//! and error shapes).

use super::{body, json_response, submit, text_model, tokenize, Api, Failure, Inputs, Limits};
use crate::http::{Request, Responder, Response};
use crate::ml::model::Task;
use crate::ml::repository::Repository;
use crate::ml::text::{self, Tokens};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The http layer's error `status` in OpenAI's shape.
pub(super) fn openai_http_error(status: u16, reason: &str) -> Response {
    let body = json!({"error": {
        "message": reason, "type": "invalid_request_error", "param": null, "code": null,
    }});
    Response::json(status, body.to_string())
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
pub(super) fn openai_embeddings(
    repo: &Repository,
    req: &Request,
    responder: Responder,
    limits: Limits,
) {
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
