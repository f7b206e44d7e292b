//! One model: its `config.toml`, the metadata read from the graph, and the
//! ONNX Runtime sessions that run it.

use super::graph::{self, Graph};
use super::tensor::{self, with_dtype, DType, Data, Elem, Tensor, TensorSpec};
use super::{Error, Runtime};
use ndarray::{ArrayViewD, IxDyn};
use ort::session::{RunOptions, Session, SessionInputValue};
use ort::value::{TensorRef, ValueType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Default `max_batch_size` for a model whose inputs and outputs all have a
/// dynamic first dimension and whose config does not say.
pub const DEFAULT_MAX_BATCH: usize = 32;
/// Default `max_dynamic_dim`: the largest size of a dynamic dimension
/// that neither the model nor `config.toml` limits. 4096 covers long text
/// (8x BERT's 512 positions) and large images, while one request cannot
/// make a run grow without bound (SECURITY.md I8).
pub const DEFAULT_MAX_DYNAMIC_DIM: usize = 4096;

/// Default `max_batch_tokens` (TEI's `--max-batch-tokens`).
pub const DEFAULT_MAX_BATCH_TOKENS: usize = 16384;

/// What a text model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Text in, one vector out.
    Embed,
    /// A (query, text) pair in (the tokenizer's pair encoding), one
    /// relevance logit out: a cross-encoder reranker.
    Rerank,
    /// A text (or a (text, text_pair) pair) in, one logit per label out:
    /// a sequence classifier.
    Classify,
}

impl Task {
    /// Its name in `config.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Task::Embed => "embed",
            Task::Rerank => "rerank",
            Task::Classify => "classify",
        }
    }
}

/// How a text's token vectors become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean over the text's tokens (sentence-transformers' default).
    Mean,
    /// The first token's vector (`[CLS]`).
    Cls,
    /// The last token's vector (decoder models).
    Last,
}

/// Limits for one input, set in `config.toml` as `[inputs.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputLimits {
    /// The largest size of each dimension (as many as the input has; 0
    /// keeps the default: the model's own limit or `max_dynamic_dim`).
    pub max_dims: Vec<usize>,
    /// `[low, high]`: the values an integer input may take, inclusive
    /// (default: what the model declares, e.g. a vocabulary's rows).
    pub range: Option<[i64; 2]>,
}

/// A model's `config.toml` (every key optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Most rows in one batch; 0 = no batching (requests run one by one,
    /// with the model's own shapes). Default: 32 when every input and output
    /// has a dynamic first dimension, else 0.
    pub max_batch_size: Option<usize>,
    /// How long the first request of a batch waits for more, in µs. Default 0
    /// (a batch is whatever queued while the previous one ran).
    pub max_queue_delay_us: u64,
    /// Batch sizes worth running at once: the batcher stops waiting when the
    /// rows gathered reach one of them.
    pub preferred_batch_sizes: Vec<usize>,
    /// Most requests waiting; more answer 503 with Retry-After. Default 1024.
    pub max_queue_size: usize,
    /// A request still queued after this long answers 504, in ms. Default 10000.
    pub queue_timeout_ms: u64,
    /// Sessions running in parallel, each with its own thread. Default 1.
    pub instances: usize,
    /// ONNX Runtime intra-op threads per session. Default 1.
    pub intra_op_threads: usize,
    /// The largest size of a dynamic dimension not limited otherwise
    /// (the batch dimension is limited by `max_batch_size`). Default 4096.
    pub max_dynamic_dim: usize,
    /// Per-input limits by input name (`[inputs.input_ids] max_dims = [0, 256]`).
    pub inputs: BTreeMap<String, InputLimits>,
    /// For a text model (a `tokenizer.json` beside `model.onnx`): what it
    /// does, `embed`, `rerank` or `classify`. Default `embed`.
    pub task: Option<Task>,
    /// For `task = "classify"`: the label of each output logit, in order.
    /// Default: `id2label` of a Hugging Face `config.json` beside the
    /// model; with neither, the model does not load.
    pub labels: Option<Vec<String>>,
    /// How token vectors become one text vector. Default `mean`.
    pub pooling: Option<Pooling>,
    /// Scale embeddings to unit length. Default true for `embed`.
    pub normalize: Option<bool>,
    /// Most tokens per text (for `rerank`, per pair: the query and the
    /// text together), special tokens included. Default:
    /// `sentence_bert_config.json`'s `max_seq_length` when present, else the
    /// model's sequence limit.
    pub max_length: Option<usize>,
    /// A text over `max_length` is cut to it (true; a pair is cut with the
    /// tokenizer's own strategy, longest first unless `tokenizer.json`
    /// says) or refused with its token count (false). Default true; a
    /// request may say otherwise.
    pub truncate: bool,
    /// Most padded tokens (texts × the longest of them) in one run: texts
    /// are grouped by length so padding stays small. Default 16384 (TEI's).
    pub max_batch_tokens: usize,
    /// The model was trained so its vectors may be cut shorter (Matryoshka
    /// embeddings): OpenAI's `dimensions` is honoured (cut, renormalized).
    /// Default false: `dimensions` other than the model's is refused.
    pub truncate_dimensions: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            max_batch_size: None,
            max_queue_delay_us: 0,
            preferred_batch_sizes: Vec::new(),
            max_queue_size: 1024,
            queue_timeout_ms: 10_000,
            instances: 1,
            intra_op_threads: 1,
            max_dynamic_dim: DEFAULT_MAX_DYNAMIC_DIM,
            inputs: BTreeMap::new(),
            task: None,
            labels: None,
            pooling: None,
            normalize: None,
            max_length: None,
            truncate: true,
            max_batch_tokens: DEFAULT_MAX_BATCH_TOKENS,
            truncate_dimensions: false,
        }
    }
}

impl ModelConfig {
    /// Reads `dir/config.toml`, or the defaults if there is none.
    pub fn read(dir: &Path) -> Result<ModelConfig, String> {
        let path = dir.join("config.toml");
        let cfg = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str::<ModelConfig>(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ModelConfig::default(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        if cfg.instances == 0 || cfg.instances > 64 {
            return Err("instances must be between 1 and 64".into());
        }
        if cfg.intra_op_threads == 0 || cfg.intra_op_threads > 256 {
            return Err("intra_op_threads must be between 1 and 256".into());
        }
        if cfg.max_queue_size == 0 {
            return Err("max_queue_size must be at least 1".into());
        }
        if cfg.max_dynamic_dim == 0 {
            return Err("max_dynamic_dim must be at least 1".into());
        }
        if cfg.max_batch_tokens == 0 || cfg.max_length == Some(0) {
            return Err("max_batch_tokens and max_length must be at least 1".into());
        }
        if let Some(labels) = &cfg.labels {
            if cfg.task != Some(Task::Classify) {
                return Err("labels applies to task = \"classify\" only".into());
            }
            check_labels(labels).map_err(|e| format!("labels: {e}"))?;
        }
        for (name, l) in &cfg.inputs {
            if let Some([lo, hi]) = l.range {
                if lo > hi {
                    return Err(format!("[inputs.{name}] range: {lo} is above {hi}"));
                }
            }
        }
        Ok(cfg)
    }
}

/// Checks a classifier's labels: at least one, none empty, no two alike
/// (an answer names its scores by label).
pub fn check_labels(labels: &[String]) -> Result<(), String> {
    if labels.is_empty() {
        return Err("a classifier needs at least one label".into());
    }
    if let Some(i) = labels.iter().position(|l| l.trim().is_empty()) {
        return Err(format!("label {i} is empty"));
    }
    for (i, l) in labels.iter().enumerate() {
        if let Some(j) = labels[..i].iter().position(|m| m == l) {
            return Err(format!("labels {j} and {i} are both {l:?}"));
        }
    }
    Ok(())
}

/// What a model takes and gives, read from the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Inputs in graph order.
    pub inputs: Vec<TensorSpec>,
    /// Outputs in graph order.
    pub outputs: Vec<TensorSpec>,
    /// Most rows per batch; 0 = no batching.
    pub max_batch_size: usize,
    /// For a text model: what it does with text.
    pub text: Option<TextSummary>,
}

/// What a text model does, for those who describe it (tools, listings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSummary {
    /// Its task.
    pub task: Task,
    /// Length of its vectors (a classifier: its label count).
    pub dim: usize,
    /// Most tokens per text.
    pub max_length: usize,
    /// A classifier's labels, one per logit (empty for other tasks).
    pub labels: Vec<String>,
}

impl Metadata {
    /// Checks an input's name, dtype and shape against this metadata (of
    /// model `model`, named in errors) before its data is decoded
    /// (SECURITY.md I2); returns the input's index and element count.
    pub fn check_input(
        &self,
        model: &str,
        name: &str,
        dtype: DType,
        shape: &[usize],
        max_bytes: usize,
    ) -> Result<(usize, usize), Error> {
        let (i, spec) = self
            .inputs
            .iter()
            .enumerate()
            .find(|(_, s)| s.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.inputs.iter().map(|s| s.name.as_str()).collect();
                Error::BadInput(format!(
                    "model {model:?} has no input {name:?} (inputs: {})",
                    names.join(", ")
                ))
            })?;
        let n = tensor::check_input(spec, dtype, shape, self.max_batch_size, max_bytes)?;
        Ok((i, n))
    }
}

fn specs(outlets: &[ort::value::Outlet], what: &str) -> Result<Vec<TensorSpec>, String> {
    outlets
        .iter()
        .map(|o| match o.dtype() {
            ValueType::Tensor {
                ty,
                shape,
                dimension_symbols,
            } => match DType::from_ort(*ty) {
                Some(dtype) => {
                    let mut spec = TensorSpec::new(o.name(), dtype, shape.to_vec(), usize::MAX);
                    for (name, sym) in spec.dim_names.iter_mut().zip(dimension_symbols.iter()) {
                        name.clone_from(sym);
                    }
                    Ok(spec)
                }
                None => Err(format!(
                    "{what} {:?} has element type {ty:?}, which Conduit does not serve (supported: BOOL, UINT8-64, INT8-64, FP32, FP64)",
                    o.name()
                )),
            },
            other => Err(format!(
                "{what} {:?} is a {other:?}, not a tensor; Conduit serves tensor inputs and outputs only",
                o.name()
            )),
        })
        .collect()
}

/// Reads the metadata, settles the batch size and each input's limits
/// (`config.toml` first, then what the graph in `file` declares, then
/// `max_dynamic_dim`).
pub fn metadata(session: &Session, cfg: &ModelConfig, file: &Path) -> Result<Metadata, String> {
    let mut inputs = specs(session.inputs(), "input")?;
    let outputs = specs(session.outputs(), "output")?;
    let batchable = inputs
        .iter()
        .chain(&outputs)
        .all(|s| s.shape.first() == Some(&-1));
    let max_batch_size = match cfg.max_batch_size {
        None if batchable => DEFAULT_MAX_BATCH,
        None => 0,
        Some(n) if n > 0 && !batchable => {
            return Err(format!(
                "max_batch_size = {n} needs a dynamic first dimension on every input and output; set it to 0"
            ))
        }
        Some(n) => n,
    };
    let graph = std::fs::read(file)
        .map_err(|e| e.to_string())
        .and_then(|b| graph::read(&b));
    let graph = match graph {
        Ok(g) => Some(g),
        Err(e) => {
            // ONNX Runtime read the file; only the declared limits are lost.
            tracing::warn!(file = %file.display(), error = %e, "cannot read the graph's limits");
            None
        }
    };
    for name in cfg.inputs.keys() {
        if !inputs.iter().any(|s| &s.name == name) {
            return Err(format!(
                "config.toml [inputs.{name}]: the model has no input {name:?}"
            ));
        }
    }
    for spec in &mut inputs {
        set_limits(spec, cfg, graph.as_ref(), max_batch_size)?;
    }
    Ok(Metadata {
        inputs,
        outputs,
        max_batch_size,
        text: None,
    })
}

/// Fills `spec.max_dims` and `spec.range` (see [`metadata`]).
fn set_limits(
    spec: &mut TensorSpec,
    cfg: &ModelConfig,
    graph: Option<&Graph>,
    max_batch: usize,
) -> Result<(), String> {
    let own = cfg.inputs.get(&spec.name);
    let set_dims = own.map_or(&[][..], |l| l.max_dims.as_slice());
    if !set_dims.is_empty() && set_dims.len() != spec.shape.len() {
        return Err(format!(
            "config.toml [inputs.{}] max_dims has {} entries; the input has {} dimensions",
            spec.name,
            set_dims.len(),
            spec.shape.len()
        ));
    }
    if own.is_some_and(|l| l.range.is_some()) && !spec.dtype.is_integer() {
        return Err(format!(
            "config.toml [inputs.{}] range: the input is {}, and a range applies to integer inputs",
            spec.name,
            spec.dtype.name()
        ));
    }
    let declared = match graph {
        Some(g) if spec.dtype.is_integer() => g.declared(&spec.name, spec.shape.len()),
        _ => graph::Declared::default(),
    };
    for (i, (max, &dim)) in spec.max_dims.iter_mut().zip(&spec.shape).enumerate() {
        *max = if let Ok(fixed) = usize::try_from(dim) {
            fixed
        } else if i == 0 && max_batch > 0 {
            max_batch
        } else if let Some(&set) = set_dims.get(i).filter(|&&m| m > 0) {
            set
        } else if let Some(p) = declared.max_sequence.filter(|_| i == 1) {
            usize::try_from(p).unwrap_or(usize::MAX)
        } else {
            cfg.max_dynamic_dim
        };
    }
    spec.range = own
        .and_then(|l| l.range)
        .map(|[lo, hi]| (lo, hi))
        .or(declared.range);
    Ok(())
}

/// Opens a session with spinning off (idle intra-op threads must not eat
/// the cores the I/O loops need).
pub fn open(rt: &Runtime, file: &Path, threads: usize) -> Result<Session, String> {
    Session::builder(rt.environment())
        .map_err(|e| e.to_string())?
        .with_intra_op_spinning(false)
        .map_err(|e| e.to_string())?
        .with_inter_op_spinning(false)
        .map_err(|e| e.to_string())?
        .with_intra_threads(threads)
        .map_err(|e| e.to_string())?
        .commit_from_file(file)
        .map_err(|e| format!("ONNX Runtime cannot load {}: {e}", file.display()))
}

/// A one-row input of zeros for every input (dynamic dims as 1), for the warm-up run.
pub fn warmup_inputs(meta: &Metadata) -> Vec<Tensor> {
    fn zeros<T: Elem>(n: usize) -> Data {
        T::wrap(vec![T::default(); n])
    }
    meta.inputs
        .iter()
        .map(|s| {
            let shape: Vec<usize> = s.shape.iter().map(|&d| d.max(1) as usize).collect();
            let n = shape.iter().product();
            Tensor {
                name: s.name.clone(),
                shape,
                data: with_dtype!(s.dtype, zeros(n)),
            }
        })
        .collect()
}

fn input_value<'a, T: Elem>(t: &'a Tensor) -> Result<SessionInputValue<'a>, Error> {
    let s = T::slice(&t.data).ok_or_else(|| Error::BadInput("datatype mismatch".into()))?;
    let view =
        ArrayViewD::from_shape(IxDyn(&t.shape), s).map_err(|e| Error::BadInput(e.to_string()))?;
    let r = TensorRef::from_array_view(view).map_err(|e| Error::Inference(e.to_string()))?;
    Ok(r.into())
}

fn output_data<T: Elem>(v: &ort::value::DynValue) -> Result<(Vec<usize>, Data), Error> {
    let (shape, s) = v
        .try_extract_tensor::<T>()
        .map_err(|e| Error::Inference(e.to_string()))?;
    let shape = shape.iter().map(|&d| d.max(0) as usize).collect();
    Ok((shape, T::wrap(s.to_vec())))
}

/// Runs `inputs` (named, in any order) and returns every output in graph
/// order. `shrink` hands the memory ONNX Runtime's arena grew for this run
/// back when it ends (for a run much larger than usual, SECURITY.md I8).
pub fn run(
    session: &mut Session,
    meta: &Metadata,
    inputs: &[Tensor],
    shrink: bool,
) -> Result<Vec<Tensor>, Error> {
    let values: Vec<(&str, SessionInputValue<'_>)> = inputs
        .iter()
        .map(|t| Ok((t.name.as_str(), with_dtype!(t.dtype(), input_value(t))?)))
        .collect::<Result<_, Error>>()?;
    let opts = if shrink {
        let mut o = RunOptions::new().map_err(|e| Error::Inference(e.to_string()))?;
        o.set("memory.enable_memory_arena_shrinkage", "cpu:0")
            .map_err(|e| Error::Inference(e.to_string()))?;
        Some(o)
    } else {
        None
    };
    let outputs = match &opts {
        Some(o) => session.run_with_options(values, o),
        None => session.run(values),
    }
    .map_err(|e| Error::Inference(e.to_string()))?;
    meta.outputs
        .iter()
        .map(|spec| {
            let v = outputs
                .get(spec.name.as_str())
                .ok_or_else(|| Error::Inference(format!("output {:?} missing", spec.name)))?;
            let (shape, data) = with_dtype!(spec.dtype, output_data(v))?;
            Ok(Tensor {
                name: spec.name.clone(),
                shape,
                data,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ModelConfig::read` of a `config.toml` holding `text`.
    fn read(text: &str) -> Result<ModelConfig, String> {
        let dir = std::env::temp_dir().join(format!(
            "conduit-model-config-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), text).unwrap();
        let cfg = ModelConfig::read(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        cfg
    }

    #[test]
    fn labels_belong_to_a_classifier_and_name_each_logit_once() {
        let cfg = read("task = \"classify\"\nlabels = [\"no\", \"yes\"]\n").unwrap();
        assert_eq!(cfg.task, Some(Task::Classify));
        assert_eq!(cfg.labels, Some(vec!["no".to_string(), "yes".to_string()]));
        for (text, want) in [
            ("labels = [\"a\"]\n", "task = \"classify\" only"),
            ("task = \"embed\"\nlabels = [\"a\"]\n", "only"),
            ("task = \"classify\"\nlabels = []\n", "at least one label"),
            (
                "task = \"classify\"\nlabels = [\"a\", \" \"]\n",
                "label 1 is empty",
            ),
            (
                "task = \"classify\"\nlabels = [\"a\", \"b\", \"a\"]\n",
                "labels 0 and 2",
            ),
        ] {
            let e = read(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
