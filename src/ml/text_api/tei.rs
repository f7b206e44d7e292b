//! Text Embeddings Inference's API: `POST /embed`, `/rerank`, `/predict`
//! and `/tokenize` (their request, answer and error shapes).

use super::{
    body, default_text_model, json_response, submit, text_model, tokenize, Api, Failure, Inputs,
    Kind, Limits, Sequence,
};
use crate::http::{Request, Responder, Response};
use crate::ml::model::Task;
use crate::ml::repository::Repository;
use crate::ml::text::{self, Piece, TextError, Tokens};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The http layer's error `status` in TEI's shape.
pub(super) fn tei_http_error(status: u16, reason: &str) -> Response {
    Response::json(
        status,
        json!({"error": reason, "error_type": "Validation"}).to_string(),
    )
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

/// `POST /embed` (TEI).
pub(super) fn tei_embed(repo: &Repository, req: &Request, responder: Responder, limits: Limits) {
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
pub(super) fn tei_rerank(
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
pub(super) fn tei_predict(repo: &Repository, req: &Request, responder: Responder, limits: Limits) {
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
pub(super) fn tei_tokenize(
    repo: &Repository,
    req: &Request,
    max_texts: usize,
) -> Result<Response, Failure> {
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
