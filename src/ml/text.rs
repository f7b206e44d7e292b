//! Text models: a Hugging Face `tokenizer.json` beside `model.onnx` makes a
//! model take text. Tokenization (the `tokenizers` crate), the padded input
//! tensors of one run, and pooling of the model's token vectors. A rerank
//! model (a cross-encoder) takes (query, text) pairs, encoded with the
//! tokenizer's pair template, and gives one logit per pair; a classify
//! model takes a text or a pair and gives one logit per label.
//!
//! The tokenizer file's own padding and truncation are not the serving
//! policy: each run pads to its own longest text, and `max_length` with
//! `truncate` (from `config.toml`) decide what a long text becomes (the
//! file's truncation strategy, direction and stride are kept).

use super::model::{check_labels, Metadata, ModelConfig, Pooling, Task, TextSummary};
use super::tensor::{DType, Data, Tensor};
use super::Error;
use std::path::Path;
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

/// Most tokens per text when neither `config.toml`, the
/// sentence-transformers config nor the graph says (BERT's positions).
const FALLBACK_MAX_LENGTH: usize = 512;

/// A text (or a pair of texts) as token ids, ready for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// Token ids, special tokens included.
    pub ids: Vec<u32>,
    /// Segment ids (all 0 for a single text; a pair's second text is
    /// segment 1 in BERT's template).
    pub type_ids: Vec<u32>,
}

/// One token of a tokenized text, as TEI's `/tokenize` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Its id.
    pub id: u32,
    /// The text it covers (a special token: its own name, e.g. `[CLS]`).
    pub text: String,
    /// Added by the tokenizer's template (`[CLS]`, `[SEP]`).
    pub special: bool,
    /// The characters it covers, `[start, stop)` in chars of the input
    /// (none for a special token).
    pub span: Option<(usize, usize)>,
}

impl Tokens {
    /// Token ids a client gave itself (special tokens included, as it
    /// sent them), one segment.
    pub fn from_ids(ids: Vec<u32>) -> Tokens {
        let type_ids = vec![0; ids.len()];
        Tokens { ids, type_ids }
    }

    /// How many tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for no tokens at all.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Where a model's graph inputs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    Ids,
    Mask,
    TypeIds,
}

/// The output a text vector is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vectors {
    /// `[batch, sequence, hidden]`: pooled here.
    PerToken(usize),
    /// `[batch, hidden]`: the model pooled already; for a reranker
    /// `[batch, 1]` or `[batch]`, one logit per pair (`dim` 1); for a
    /// classifier `[batch, labels]`, one logit per label.
    PerText(usize),
}

/// A loaded text model's tokenizers and serving policy.
#[derive(Debug)]
pub struct TextModel {
    /// Cuts texts to `max_length` (special tokens kept).
    cutting: Tokenizer,
    /// Never cuts: for `truncate = false`, which must know the real count.
    whole: Tokenizer,
    /// What it does.
    pub task: Task,
    /// How token vectors become one.
    pub pooling: Pooling,
    /// Unit-length vectors.
    pub normalize: bool,
    /// Most tokens per text.
    pub max_length: usize,
    /// The default for a text over `max_length`: cut (true) or refuse.
    pub truncate: bool,
    /// Most padded tokens per run.
    pub max_batch_tokens: usize,
    /// Most texts per run.
    pub max_batch_texts: usize,
    /// Vectors may be cut shorter (`dimensions`).
    pub truncate_dimensions: bool,
    /// The id padding positions get.
    pad_id: u32,
    /// Token ids are below this (`get_vocab_size` builds the vocabulary
    /// afresh on every call).
    vocab: u32,
    /// One entry per graph input, in graph order: what it takes and
    /// whether its ids are 32-bit (else 64-bit).
    feeds: Vec<(Feed, bool)>,
    vectors: Vectors,
    /// Length of a text vector (1 for a reranker: its logit; a
    /// classifier: one logit per label).
    pub dim: usize,
    /// A classifier's labels, one per logit in order (empty otherwise).
    pub labels: Vec<String>,
}

/// Why a text cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Longer than `max_length` with truncation off.
    #[error("{tokens} tokens, over the model's limit of {max}")]
    TooLong {
        /// Its token count.
        tokens: usize,
        /// The limit.
        max: usize,
    },
    /// The tokenizer failed on it.
    #[error("cannot tokenize: {0}")]
    Tokenizer(String),
    /// A token id outside the vocabulary (token-id input).
    #[error("token id {0} is outside the vocabulary")]
    BadId(u32),
}

/// `sentence_bert_config.json`'s sequence length, if the file says.
fn sentence_transformers_max(dir: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(dir.join("sentence_bert_config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("max_seq_length")?
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
}

/// A Hugging Face `config.json`'s `id2label` (keys `"0"` to `"n-1"`) as
/// a list; `Ok(None)` when the file has none.
fn hf_labels(path: &Path) -> Result<Option<Vec<String>>, String> {
    let at = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", at()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", at()))?;
    let Some(map) = v.get("id2label").and_then(serde_json::Value::as_object) else {
        return Ok(None);
    };
    let mut labels: Vec<Option<String>> = vec![None; map.len()];
    for (key, label) in map {
        let slot = key
            .parse::<usize>()
            .ok()
            .and_then(|i| labels.get_mut(i))
            .ok_or_else(|| {
                format!(
                    "{}: id2label key {key:?} is not a label index below {}",
                    at(),
                    map.len()
                )
            })?;
        let label = label
            .as_str()
            .ok_or_else(|| format!("{}: id2label[{key:?}] is not a string", at()))?;
        *slot = Some(label.to_string());
    }
    labels
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .map(Some)
        .ok_or_else(|| format!("{}: id2label does not name each index once", at()))
}

/// A classifier's labels: `config.toml`'s, else `config.json`'s `id2label`,
/// with where they came from (for errors).
fn classify_labels(
    cfg: &ModelConfig,
    model_file: &Path,
    dir: &Path,
) -> Result<(Vec<String>, &'static str), String> {
    if let Some(l) = &cfg.labels {
        check_labels(l).map_err(|e| format!("config.toml labels: {e}"))?;
        return Ok((l.clone(), "config.toml's labels"));
    }
    let found = match beside(model_file, dir, "config.json") {
        Some(path) => hf_labels(&path)?,
        None => None,
    };
    let l = found.ok_or(
        "classify model: no labels: set labels = [...] in config.toml (one per output logit, in order), or put the model's Hugging Face config.json (with id2label) beside it",
    )?;
    check_labels(&l).map_err(|e| format!("config.json id2label: {e}"))?;
    Ok((l, "config.json's id2label"))
}

/// The file `name` in the version directory of `model_file`, else in the
/// model's directory `dir`.
fn beside(model_file: &Path, dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    let near = model_file.parent().map(|p| p.join(name));
    near.filter(|p| p.is_file())
        .or_else(|| Some(dir.join(name)).filter(|p| p.is_file()))
}

/// Whether a model is a text model: a `tokenizer.json` beside its graph.
pub fn is_text_model(model_file: &Path, dir: &Path) -> bool {
    beside(model_file, dir, "tokenizer.json").is_some()
}

impl TextModel {
    /// Reads the tokenizer beside `model_file` (or in `dir`) and settles
    /// the serving policy against the graph in `meta`. `Ok(None)`: not a
    /// text model. An error says why the graph cannot serve the task.
    pub fn load(
        model_file: &Path,
        dir: &Path,
        cfg: &ModelConfig,
        meta: &Metadata,
    ) -> Result<Option<TextModel>, String> {
        let Some(path) = beside(model_file, dir, "tokenizer.json") else {
            if cfg.task.is_some() {
                return Err("config.toml sets a task, but there is no tokenizer.json".into());
            }
            return Ok(None);
        };
        let mut tok =
            Tokenizer::from_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let pad_id = tok.get_padding().map_or(0, |p| p.pad_id);
        // The file's strategy (how a pair is cut), direction and stride
        // stay; only the length is the serving policy's.
        let own_truncation = tok.get_truncation().cloned().unwrap_or_default();
        tok.with_padding(None);
        let whole = tok
            .with_truncation(None)
            .map_err(|e| format!("tokenizer: {e}"))?
            .clone();

        let mut feeds = Vec::with_capacity(meta.inputs.len());
        let mut seq_limit = usize::MAX;
        for s in &meta.inputs {
            let feed = match s.name.as_str() {
                "input_ids" => Feed::Ids,
                "attention_mask" => Feed::Mask,
                "token_type_ids" => Feed::TypeIds,
                other => {
                    return Err(format!(
                        "text model: input {other:?} is none of input_ids, attention_mask, token_type_ids"
                    ))
                }
            };
            let narrow = match (s.dtype, s.shape.len()) {
                (DType::I32, 2) => true,
                (DType::I64, 2) => false,
                _ => {
                    return Err(format!(
                    "text model: input {:?} must be INT64 or INT32 [batch, sequence], not {} {:?}",
                    s.name,
                    s.dtype.name(),
                    s.shape
                ))
                }
            };
            seq_limit = seq_limit.min(s.max_dims.get(1).copied().unwrap_or(usize::MAX));
            feeds.push((feed, narrow));
        }
        if !feeds.iter().any(|(f, _)| *f == Feed::Ids) {
            return Err("text model: the graph has no input_ids input".into());
        }
        let task = cfg.task.unwrap_or(Task::Embed);
        let mut labels = Vec::new();
        let (vectors, dim) = match task {
            Task::Embed => {
                let vectors = Self::pick_output(meta)?;
                let (Vectors::PerToken(i) | Vectors::PerText(i)) = vectors;
                let dim = meta.outputs[i]
                    .shape
                    .last()
                    .and_then(|&d| usize::try_from(d).ok())
                    .ok_or(
                        "text model: the output's last dimension (the vector length) must be fixed",
                    )?;
                (vectors, dim)
            }
            Task::Rerank => (Self::pick_logit(meta)?, 1),
            Task::Classify => {
                let (l, source) = classify_labels(cfg, model_file, dir)?;
                let vectors = Self::pick_labels(meta, l.len(), source)?;
                labels = l;
                (vectors, labels.len())
            }
        };
        let max_length = match cfg.max_length.or_else(|| sentence_transformers_max(dir)) {
            Some(n) if n > seq_limit => {
                return Err(format!(
                    "max_length {n} is over the model's sequence limit {seq_limit}"
                ))
            }
            Some(n) => n,
            None => seq_limit.min(FALLBACK_MAX_LENGTH),
        };
        let strategy = match task {
            Task::Rerank => own_truncation.strategy,
            // One text has no second sequence to choose from (and
            // `only_second` would refuse it); a classifier takes both one
            // text and pairs, and cuts a pair as Hugging Face's pipelines
            // do by default.
            Task::Embed | Task::Classify => TruncationStrategy::LongestFirst,
        };
        let cutting = tok
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy,
                ..own_truncation
            }))
            .map_err(|e| format!("tokenizer: {e}"))?
            .clone();
        let vocab = u32::try_from(whole.get_vocab_size(true)).unwrap_or(u32::MAX);
        Ok(Some(TextModel {
            cutting: cutting.into(),
            whole: whole.into(),
            task,
            pooling: cfg.pooling.unwrap_or(Pooling::Mean),
            normalize: cfg.normalize.unwrap_or(task == Task::Embed),
            max_length,
            truncate: cfg.truncate,
            max_batch_tokens: cfg.max_batch_tokens.max(max_length),
            max_batch_texts: meta.max_batch_size.max(1),
            truncate_dimensions: cfg.truncate_dimensions,
            pad_id,
            vocab,
            feeds,
            vectors,
            dim,
            labels,
        }))
    }

    /// The output to read vectors from: `last_hidden_state`, else the only
    /// `[batch, sequence, hidden]` output, else a `[batch, hidden]` one
    /// (`sentence_embedding`, `pooler_output`).
    fn pick_output(meta: &Metadata) -> Result<Vectors, String> {
        let outs = &meta.outputs;
        let float = |i: usize| outs[i].dtype == DType::F32;
        if let Some(i) = outs.iter().position(|o| o.name == "last_hidden_state") {
            if float(i) && outs[i].shape.len() == 3 {
                return Ok(Vectors::PerToken(i));
            }
        }
        if let Some(i) = (0..outs.len()).find(|&i| float(i) && outs[i].shape.len() == 3) {
            return Ok(Vectors::PerToken(i));
        }
        if let Some(i) = (0..outs.len()).find(|&i| float(i) && outs[i].shape.len() == 2) {
            return Ok(Vectors::PerText(i));
        }
        Err("text model: no FP32 output of shape [batch, sequence, hidden] or [batch, hidden] to embed from".into())
    }

    /// What it does, for descriptions.
    pub fn summary(&self) -> TextSummary {
        TextSummary {
            task: self.task,
            dim: self.dim,
            max_length: self.max_length,
            labels: self.labels.clone(),
        }
    }

    /// A classifier's output: FP32 `[batch, n]` with `n` fixed and equal
    /// to its `n` labels (from `source`); `logits` (a
    /// sequence-classification export's name) first, else the first FP32
    /// `[batch, k]` output. A count that differs from the labels' is
    /// refused: which logit a label names would be a guess.
    fn pick_labels(meta: &Metadata, n: usize, source: &str) -> Result<Vectors, String> {
        let outs = &meta.outputs;
        let per_text = |i: usize| outs[i].dtype == DType::F32 && outs[i].shape.len() == 2;
        let i = outs
            .iter()
            .position(|o| o.name == "logits")
            .filter(|&i| per_text(i))
            .or_else(|| (0..outs.len()).find(|&i| per_text(i)));
        let Some(i) = i else {
            let found: Vec<String> = outs
                .iter()
                .map(|o| format!("{} {} {:?}", o.name, o.dtype.name(), o.shape))
                .collect();
            return Err(format!(
                "classify model: no FP32 output of one logit per label ([batch, {n}]); the graph gives {}",
                found.join(", ")
            ));
        };
        let o = &outs[i];
        match usize::try_from(o.shape[1]) {
            Ok(k) if k == n => Ok(Vectors::PerText(i)),
            Ok(k) => Err(format!(
                "classify model: output {:?} gives {k} logits per text ({} {:?}), but {source} name {n} labels; there must be one label per logit",
                o.name,
                o.dtype.name(),
                o.shape
            )),
            Err(_) => Err(format!(
                "classify model: output {:?} ({} {:?}) has no fixed label count; it must be [batch, {n}], one logit per label",
                o.name,
                o.dtype.name(),
                o.shape
            )),
        }
    }

    /// A reranker's output: one FP32 logit per pair, `[batch, 1]` or
    /// `[batch]`; `logits` (a sequence-classification export's name)
    /// first. A classifier with several labels (`[batch, 2]`) is refused:
    /// which label means relevant is not in the graph.
    fn pick_logit(meta: &Metadata) -> Result<Vectors, String> {
        let outs = &meta.outputs;
        let is_logit = |i: usize| {
            outs[i].dtype == DType::F32 && matches!(outs[i].shape.as_slice(), [_] | [_, 1])
        };
        if let Some(i) = outs.iter().position(|o| o.name == "logits") {
            if is_logit(i) {
                return Ok(Vectors::PerText(i));
            }
        }
        if let Some(i) = (0..outs.len()).find(|&i| is_logit(i)) {
            return Ok(Vectors::PerText(i));
        }
        let found: Vec<String> = outs
            .iter()
            .map(|o| format!("{} {} {:?}", o.name, o.dtype.name(), o.shape))
            .collect();
        Err(format!(
            "rerank model: no FP32 output of one logit per pair ([batch, 1] or [batch]); the graph gives {}",
            found.join(", ")
        ))
    }

    /// Tokenizes one text; `truncate` says what a text over `max_length` becomes.
    pub fn encode(&self, text: &str, truncate: bool) -> Result<Tokens, TextError> {
        self.encode_input(text, truncate)
    }

    /// Tokenizes a (query, text) pair with the tokenizer's pair template
    /// (BERT: `[CLS] query [SEP] text [SEP]`, the text in segment 1);
    /// `truncate` says what a pair over `max_length` becomes (cut with the
    /// tokenizer's strategy, or refused with its whole count).
    pub fn encode_pair(
        &self,
        query: &str,
        text: &str,
        truncate: bool,
    ) -> Result<Tokens, TextError> {
        self.encode_input((query, text), truncate)
    }

    fn encode_input<'s>(
        &self,
        input: impl Into<tokenizers::EncodeInput<'s>>,
        truncate: bool,
    ) -> Result<Tokens, TextError> {
        let tok = if truncate { &self.cutting } else { &self.whole };
        let enc = tok
            .encode_fast(input, true)
            .map_err(|e| TextError::Tokenizer(e.to_string()))?;
        if enc.len() > self.max_length {
            return Err(TextError::TooLong {
                tokens: enc.len(),
                max: self.max_length,
            });
        }
        Ok(Tokens {
            ids: enc.get_ids().to_vec(),
            type_ids: enc.get_type_ids().to_vec(),
        })
    }

    /// Every token of `text`, never truncated, with the characters it
    /// covers (TEI's `/tokenize`); `special` adds the template's tokens.
    pub fn pieces(&self, text: &str, special: bool) -> Result<Vec<Piece>, TextError> {
        let enc = self
            .whole
            .encode_char_offsets(text, special)
            .map_err(|e| TextError::Tokenizer(e.to_string()))?;
        // Byte position of every char (and the end): offsets are in chars,
        // and walking the text again for each token would be quadratic.
        let at: Vec<usize> = text
            .char_indices()
            .map(|(b, _)| b)
            .chain(std::iter::once(text.len()))
            .collect();
        let slice = |start: usize, stop: usize| -> String {
            match (at.get(start), at.get(stop)) {
                (Some(&a), Some(&b)) if a <= b => text[a..b].to_string(),
                _ => String::new(),
            }
        };
        let pieces = enc
            .get_ids()
            .iter()
            .zip(enc.get_tokens())
            .zip(enc.get_offsets())
            .zip(enc.get_special_tokens_mask())
            .map(|(((&id, token), &(start, stop)), &mask)| {
                if mask == 1 {
                    Piece {
                        id,
                        text: token.clone(),
                        special: true,
                        span: None,
                    }
                } else {
                    Piece {
                        id,
                        text: slice(start, stop),
                        special: false,
                        span: Some((start, stop)),
                    }
                }
            })
            .collect();
        Ok(pieces)
    }

    /// Checks token ids a client gave: in the vocabulary, within `max_length`
    /// (cut to it when `truncate`).
    pub fn check_ids(&self, mut ids: Vec<u32>, truncate: bool) -> Result<Tokens, TextError> {
        if let Some(&bad) = ids.iter().find(|&&id| id >= self.vocab) {
            return Err(TextError::BadId(bad));
        }
        if ids.len() > self.max_length {
            if !truncate {
                return Err(TextError::TooLong {
                    tokens: ids.len(),
                    max: self.max_length,
                });
            }
            ids.truncate(self.max_length);
        }
        Ok(Tokens::from_ids(ids))
    }

    /// The graph inputs of one run over `texts`, each padded to the
    /// longest of them (at least one token wide).
    pub fn inputs(&self, meta: &Metadata, texts: &[&Tokens]) -> Vec<Tensor> {
        let rows = texts.len();
        let width = texts.iter().map(|t| t.len()).max().unwrap_or(0).max(1);
        self.feeds
            .iter()
            .zip(&meta.inputs)
            .map(|(&(feed, narrow), spec)| {
                let mut v: Vec<i64> = Vec::with_capacity(rows * width);
                for t in texts {
                    let (row, pad): (Box<dyn Iterator<Item = i64>>, i64) = match feed {
                        Feed::Ids => (
                            Box::new(t.ids.iter().map(|&x| i64::from(x))),
                            i64::from(self.pad_id),
                        ),
                        Feed::Mask => (Box::new(std::iter::repeat_n(1, t.len())), 0),
                        Feed::TypeIds => (Box::new(t.type_ids.iter().map(|&x| i64::from(x))), 0),
                    };
                    v.extend(row);
                    v.extend(std::iter::repeat_n(pad, width - t.len()));
                }
                let data = if narrow {
                    Data::I32(v.into_iter().map(|x| x as i32).collect())
                } else {
                    Data::I64(v)
                };
                Tensor {
                    name: spec.name.clone(),
                    shape: vec![rows, width],
                    data,
                }
            })
            .collect()
    }

    /// One vector per text from a run's outputs (`texts` as given to
    /// [`TextModel::inputs`]), pooled, not normalized ([`normalize`]).
    pub fn vectors(&self, outputs: &[Tensor], texts: &[&Tokens]) -> Result<Vec<Vec<f32>>, Error> {
        let (i, per_token) = match self.vectors {
            Vectors::PerToken(i) => (i, true),
            Vectors::PerText(i) => (i, false),
        };
        let out = outputs
            .get(i)
            .ok_or_else(|| Error::Inference("the run gave no vector output".into()))?;
        let Data::F32(flat) = &out.data else {
            return Err(Error::Inference("the vector output is not FP32".into()));
        };
        let dim = self.dim;
        let width = if per_token {
            out.shape.get(1).copied().unwrap_or(0)
        } else {
            1
        };
        if out.shape.first() != Some(&texts.len()) || flat.len() != texts.len() * width * dim {
            return Err(Error::Inference(format!(
                "the vector output has shape {:?} for {} texts",
                out.shape,
                texts.len()
            )));
        }
        let mut all = Vec::with_capacity(texts.len());
        for (row, t) in texts.iter().enumerate() {
            let base = row * width * dim;
            let token = |k: usize| &flat[base + k * dim..base + (k + 1) * dim];
            let v = if !per_token {
                token(0).to_vec()
            } else {
                let n = t.len().clamp(1, width);
                match self.pooling {
                    Pooling::Cls => token(0).to_vec(),
                    Pooling::Last => token(n - 1).to_vec(),
                    Pooling::Mean => {
                        let mut sum = vec![0f32; dim];
                        for k in 0..n {
                            for (s, x) in sum.iter_mut().zip(token(k)) {
                                *s += x;
                            }
                        }
                        sum.iter_mut().for_each(|s| *s /= n as f32);
                        sum
                    }
                }
            };
            all.push(v);
        }
        Ok(all)
    }

    /// Groups texts of these lengths into runs ([`plan`]).
    pub fn plan(&self, lens: &[usize]) -> Vec<Vec<usize>> {
        plan(lens, self.max_batch_tokens, self.max_batch_texts)
    }
}

/// The cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Bytes a reranker tokenizes for `query` paired with each of `texts`: the
/// query once per text, plus the texts.
pub fn pair_work(query: &str, texts: &[String]) -> usize {
    texts
        .iter()
        .fold(query.len().saturating_mul(texts.len()), |n, t| {
            n.saturating_add(t.len())
        })
}

/// A reranker's score from its logit: the logistic function, in (0, 1)
/// (what sentence-transformers' `CrossEncoder` and TEI report by default).
pub fn sigmoid(logit: f32) -> f32 {
    1.0 / (1.0 + (-logit).exp())
}

/// A classifier's scores from its logits, as TEI's `/predict` gives
/// them: the softmax over the labels (each in (0, 1), summing to 1), or
/// for a one-label model the sigmoid of its logit; `raw`: the logits.
pub fn class_scores(logits: &[f32], raw: bool) -> Vec<f32> {
    match logits {
        _ if raw => logits.to_vec(),
        [one] => vec![sigmoid(*one)],
        _ => {
            // Shifted by the largest logit, so no exp overflows.
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = logits.iter().map(|x| (x - max).exp()).collect();
            let sum: f32 = exp.iter().sum();
            exp.into_iter().map(|e| e / sum).collect()
        }
    }
}

/// Indexes of `scores` from the highest score to the lowest (ties in
/// index order).
pub fn by_score(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Groups texts into runs: sorted by length (so texts of a run are of like
/// length and padding stays small), each run within `max_tokens` padded
/// tokens and `max_texts` texts (a text longer than `max_tokens` runs
/// alone). Returns runs of indexes into `lens`.
pub fn plan(lens: &[usize], max_tokens: usize, max_texts: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| lens[i]);
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    for i in order {
        // Sorted: this text is the run's longest, so it sets the padding.
        let padded = (cur.len() + 1) * lens[i].max(1);
        if !cur.is_empty() && (padded > max_tokens || cur.len() >= max_texts) {
            runs.push(std::mem::take(&mut cur));
        }
        cur.push(i);
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::tensor::TensorSpec;

    /// The committed reranker fixture: MiniLM's tokenizer.json beside it.
    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text/lexical_rerank")
    }

    /// A BERT-shaped graph's metadata with these outputs.
    fn meta(outputs: &[(&str, DType, Vec<i64>)]) -> Metadata {
        let ids = |n: &str| TensorSpec::new(n, DType::I64, vec![-1, -1], 4096);
        Metadata {
            inputs: vec![
                ids("input_ids"),
                ids("attention_mask"),
                ids("token_type_ids"),
            ],
            outputs: outputs
                .iter()
                .map(|(n, d, s)| TensorSpec::new(n, *d, s.clone(), 4096))
                .collect(),
            max_batch_size: 32,
            text: None,
        }
    }

    fn reranker(
        outputs: &[(&str, DType, Vec<i64>)],
        max_length: usize,
    ) -> Result<TextModel, String> {
        let cfg = ModelConfig {
            task: Some(Task::Rerank),
            max_length: Some(max_length),
            ..ModelConfig::default()
        };
        let dir = fixture();
        TextModel::load(&dir.join("model.onnx"), &dir, &cfg, &meta(outputs))
            .map(|m| m.expect("a tokenizer.json is there"))
    }

    #[test]
    fn a_reranker_reads_one_logit_per_pair_from_batch_by_1_or_batch() {
        for shape in [vec![-1, 1], vec![-1]] {
            let m = reranker(&[("logits", DType::F32, shape.clone())], 512).unwrap();
            assert_eq!((m.task, m.dim, m.normalize), (Task::Rerank, 1, false));
            assert_eq!(m.vectors, Vectors::PerText(0), "{shape:?}");
        }
        // `logits` is preferred; else the first output of that shape.
        let outs = [
            ("score", DType::F32, vec![-1, 1]),
            ("logits", DType::F32, vec![-1, 1]),
        ];
        assert_eq!(reranker(&outs, 512).unwrap().vectors, Vectors::PerText(1));
        let outs = [
            ("hidden", DType::F32, vec![-1, -1, 384]),
            ("score", DType::F32, vec![-1, 1]),
        ];
        assert_eq!(reranker(&outs, 512).unwrap().vectors, Vectors::PerText(1));
        // Token vectors, two labels or integers are no reranker's output.
        for outs in [
            [("last_hidden_state", DType::F32, vec![-1, -1, 384])],
            [("logits", DType::F32, vec![-1, 2])],
            [("logits", DType::I64, vec![-1, 1])],
        ] {
            let e = reranker(&outs, 512).unwrap_err();
            assert!(e.contains("one logit per pair"), "{e}");
        }
    }

    /// A classifier over the committed classify fixture's tokenizer, with
    /// `labels` in its config (none: from a config.json, if `dir` has one).
    fn classifier(
        dir: &Path,
        labels: Option<&[&str]>,
        outputs: &[(&str, DType, Vec<i64>)],
    ) -> Result<TextModel, String> {
        let cfg = ModelConfig {
            task: Some(Task::Classify),
            labels: labels.map(|l| l.iter().map(|s| s.to_string()).collect()),
            ..ModelConfig::default()
        };
        TextModel::load(&dir.join("model.onnx"), dir, &cfg, &meta(outputs))
            .map(|m| m.expect("a tokenizer.json is there"))
    }

    fn classify_fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text/lexical_classify")
    }

    #[test]
    fn a_classifier_needs_one_logit_per_label_and_says_why_not() {
        let dir = classify_fixture();
        let three = Some(&["negative", "neutral", "positive"][..]);
        let m = classifier(&dir, three, &[("logits", DType::F32, vec![-1, 3])]).unwrap();
        assert_eq!((m.task, m.dim, m.normalize), (Task::Classify, 3, false));
        assert_eq!(m.labels, ["negative", "neutral", "positive"]);
        assert_eq!(m.summary().labels, m.labels);
        // `logits` is preferred; else the first FP32 [batch, k] output.
        let outs = [
            ("pooled", DType::F32, vec![-1, 3]),
            ("logits", DType::F32, vec![-1, 3]),
        ];
        assert_eq!(
            classifier(&dir, three, &outs).unwrap().vectors,
            Vectors::PerText(1)
        );
        let outs = [
            ("hidden", DType::F32, vec![-1, -1, 384]),
            ("scores", DType::F32, vec![-1, 3]),
        ];
        assert_eq!(
            classifier(&dir, three, &outs).unwrap().vectors,
            Vectors::PerText(1)
        );
        // Two labels for three logits: refused, saying both counts.
        let two = Some(&["negative", "positive"][..]);
        let e = classifier(&dir, two, &[("logits", DType::F32, vec![-1, 3])]).unwrap_err();
        assert!(
            e.contains("3 logits per text") && e.contains("2 labels") && e.contains("logits"),
            "{e}"
        );
        // A label count the graph does not fix, token vectors, integers.
        let e = classifier(&dir, three, &[("logits", DType::F32, vec![-1, -1])]).unwrap_err();
        assert!(e.contains("no fixed label count"), "{e}");
        for outs in [
            [("last_hidden_state", DType::F32, vec![-1, -1, 384])],
            [("logits", DType::I64, vec![-1, 3])],
        ] {
            let e = classifier(&dir, three, &outs).unwrap_err();
            assert!(e.contains("one logit per label"), "{e}");
        }
        // No labels in config.toml and no config.json: refused.
        let e = classifier(&dir, None, &[("logits", DType::F32, vec![-1, 3])]).unwrap_err();
        assert!(e.contains("no labels") && e.contains("id2label"), "{e}");
    }

    #[test]
    fn a_classifier_without_labels_takes_them_from_config_json() {
        let dir = std::env::temp_dir().join(format!("conduit-id2label-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            classify_fixture().join("tokenizer.json"),
            dir.join("tokenizer.json"),
        )
        .unwrap();
        let outs = [("logits", DType::F32, vec![-1, 2])];
        let write = |json: &str| std::fs::write(dir.join("config.json"), json).unwrap();
        // Keys are stringified indexes, in any order.
        write(r#"{"id2label": {"1": "POSITIVE", "0": "NEGATIVE"}, "hidden_size": 384}"#);
        let got = classifier(&dir, None, &outs).map(|m| m.labels);
        // config.toml's labels win over config.json's.
        let own = classifier(&dir, Some(&["no", "yes"]), &outs).map(|m| m.labels);
        write(r#"{"id2label": {"0": "NEGATIVE", "2": "POSITIVE"}}"#);
        let gap = classifier(&dir, None, &outs).map(|m| m.labels);
        write(r#"{"id2label": {"0": "A", "1": "B", "2": "C"}}"#);
        let three = classifier(&dir, None, &outs).map(|m| m.labels);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got.unwrap(), ["NEGATIVE", "POSITIVE"]);
        assert_eq!(own.unwrap(), ["no", "yes"]);
        let e = gap.unwrap_err();
        assert!(e.contains("\"2\" is not a label index"), "{e}");
        let e = three.unwrap_err();
        assert!(
            e.contains("2 logits per text") && e.contains("config.json's id2label name 3 labels"),
            "{e}"
        );
    }

    #[test]
    fn class_scores_are_a_softmax_or_for_one_label_a_sigmoid() {
        let s = class_scores(&[-4.0, 1.0, 4.0], false);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{s:?}");
        let e = |x: f32| x.exp();
        let want = e(4.0) / (e(-4.0) + e(1.0) + e(4.0));
        assert!((s[2] - want).abs() < 1e-6, "{s:?}");
        assert_eq!(by_score(&s), vec![2, 1, 0]);
        // Large logits do not overflow.
        let s = class_scores(&[1000.0, 0.0], false);
        assert_eq!(s, vec![1.0, 0.0]);
        assert_eq!(class_scores(&[0.0], false), vec![0.5]);
        assert_eq!(class_scores(&[-4.0, 1.0, 4.0], true), vec![-4.0, 1.0, 4.0]);
        // Ties keep label order.
        assert_eq!(by_score(&[0.2, 0.4, 0.4]), vec![1, 2, 0]);
    }

    #[test]
    fn a_pair_is_encoded_with_the_template_and_cut_longest_first() {
        let m = reranker(&[("logits", DType::F32, vec![-1, 1])], 12).unwrap();
        let t = m.encode_pair("capital of france", "paris", true).unwrap();
        // [CLS] capital of france [SEP] paris [SEP]
        assert_eq!(t.ids, vec![101, 3007, 1997, 2605, 102, 3000, 102]);
        assert_eq!(t.type_ids, vec![0, 0, 0, 0, 0, 1, 1]);
        // Over 12: the longer side loses tokens first (the tokenizer's
        // LongestFirst), the query stays whole.
        let long = "paris is the capital and largest city of france";
        let t = m.encode_pair("capital of france", long, true).unwrap();
        assert_eq!(t.len(), 12);
        assert_eq!(&t.ids[..5], &[101, 3007, 1997, 2605, 102]);
        assert_eq!(t.type_ids.iter().filter(|&&x| x == 1).count(), 7);
        assert_eq!(
            m.encode_pair("capital of france", long, false),
            Err(TextError::TooLong {
                tokens: 15,
                max: 12
            })
        );
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(2.0) - 0.880_797).abs() < 1e-6);
    }

    #[test]
    fn a_pair_is_cut_with_the_tokenizers_own_strategy() {
        // The same tokenizer.json, saying only_first: the query is cut and
        // the text stays whole (longest_first would cut both).
        let dir = std::env::temp_dir().join(format!("conduit-only-first-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut tok: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixture().join("tokenizer.json")).unwrap())
                .unwrap();
        tok["truncation"]["strategy"] = "OnlyFirst".into();
        std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
        let cfg = ModelConfig {
            task: Some(Task::Rerank),
            max_length: Some(12),
            ..ModelConfig::default()
        };
        let outs = [("logits", DType::F32, vec![-1, 1])];
        let m = TextModel::load(&dir.join("model.onnx"), &dir, &cfg, &meta(&outs))
            .unwrap()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        // 8 query words, 6 text words, 3 specials: 17 tokens, 5 too many.
        let (query, text) = ("one two three four five six seven eight", "a b c d e f");
        let t = m.encode_pair(query, text, true).unwrap();
        assert_eq!(t.len(), 12);
        assert_eq!(
            t.type_ids.iter().filter(|&&x| x == 1).count(),
            7,
            "6 + [SEP]"
        );
        let longest = reranker(&outs, 12).unwrap();
        let t = longest.encode_pair(query, text, true).unwrap();
        assert_eq!(
            t.type_ids.iter().filter(|&&x| x == 1).count(),
            5,
            "4 + [SEP]: both cut"
        );
    }

    #[test]
    fn pieces_cover_characters_and_mark_special_tokens() {
        let m = reranker(&[("logits", DType::F32, vec![-1, 1])], 512).unwrap();
        let p = m.pieces("Héllo, wörld", true).unwrap();
        let piece = |id, text: &str, span: Option<(usize, usize)>| Piece {
            id,
            text: text.into(),
            special: span.is_none(),
            span,
        };
        assert_eq!(
            p,
            vec![
                piece(101, "[CLS]", None),
                piece(7592, "Héllo", Some((0, 5))),
                piece(1010, ",", Some((5, 6))),
                piece(2088, "wörld", Some((7, 12))),
                piece(102, "[SEP]", None),
            ]
        );
        assert_eq!(m.pieces("Héllo, wörld", false).unwrap().len(), 3);
        // Never truncated, whatever max_length says.
        assert_eq!(m.pieces(&"word ".repeat(600), true).unwrap().len(), 602);
    }

    #[test]
    fn runs_group_like_lengths_within_the_token_and_text_budgets() {
        let lens = [10, 200, 12, 11, 190, 9];
        let runs = plan(&lens, 400, 64);
        assert_eq!(runs, vec![vec![5, 0, 3, 2], vec![4, 1]]);
        for r in &runs {
            let width = r.iter().map(|&i| lens[i]).max().unwrap();
            assert!(r.len() * width <= 400);
        }
        assert_eq!(plan(&lens, 10_000, 2).len(), 3, "at most 2 texts a run");
        assert_eq!(
            plan(&[5000], 100, 8),
            vec![vec![0]],
            "an outsized text runs alone"
        );
        assert!(plan(&[], 100, 8).is_empty());
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
    }
}
