//! The model repository: a directory in Triton's layout, models loaded on
//! first use (or eagerly), an LRU cache under a memory budget, and explicit
//! load/unload.
//!
//! Invariant: a model with requests in flight is never evicted; a lease
//! (`Lease`) is counted under the entry's lock, and eviction checks the
//! count under the same lock.
//! Invariant: a load that fails leaves the previous version serving.

use super::batcher::{Batcher, Done, Job, TextDone, TextJob};
use super::memory;
use super::model::{self, Metadata, ModelConfig, Task};
use super::stats::{Metrics, ModelStats};
use super::tensor::{self, DType, Tensor};
use super::text::{self, TextModel, Tokens};
use super::{Error, MlConfig, Runtime};
use crate::util::lock;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Model names: `[A-Za-z0-9._-]{1,64}` (SECURITY.md I1), and not `.` or `..`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name != "."
        && name != ".."
}

/// A loaded model: metadata, the version served, its batcher.
#[derive(Debug)]
pub struct Loaded {
    /// Inputs, outputs, batch size.
    pub meta: Arc<Metadata>,
    /// Its tokenizer and text policy, for a text model.
    pub text: Option<Arc<TextModel>>,
    /// The version directory served (`1` for a flat layout).
    pub version: String,
    /// Bytes measured around load and warm-up.
    pub memory: u64,
    /// Its `config.toml`.
    pub cfg: ModelConfig,
    batcher: Batcher,
}

#[derive(Debug)]
enum State {
    /// Not in memory; `explicit` if unloaded through the repository API
    /// (then it stays unloaded until loaded again).
    Unloaded {
        explicit: bool,
    },
    Ready(Arc<Loaded>),
    /// The last load failed; requests get this reason.
    Failed(String),
}

#[derive(Debug)]
struct Entry {
    name: String,
    dir: PathBuf,
    stats: Arc<ModelStats>,
    state: Mutex<State>,
    /// Metadata seen at the last successful load (kept after eviction).
    known: Mutex<Option<Arc<Metadata>>>,
    last_used: AtomicU64,
    in_flight: AtomicUsize,
    /// A text model (a `tokenizer.json` beside its graph, seen at the
    /// scan): its task in `config.toml` (default embed).
    text: Option<Task>,
}

/// What the repository index reports for a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Model name.
    pub name: String,
    /// Version served (empty if never loaded).
    pub version: String,
    /// `READY`, `UNAVAILABLE` or `UNLOADED`.
    pub state: &'static str,
    /// Why it is unavailable, if it is.
    pub reason: String,
    /// Bytes measured at load (0 when not loaded).
    pub memory: u64,
}

/// What happened to a model, for [`Repository::on_change`] listeners.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// The model serves with this metadata: its first load, a reload
    /// whose metadata differs, or a load after an explicit unload.
    /// (Eviction under the memory budget and the transparent reload after
    /// it change nothing a client can see, and report nothing.)
    Serving(&'a Metadata),
    /// Unloaded through the repository API: out of service until loaded again.
    Withdrawn,
}

type Listener = Box<dyn Fn(&str, Change<'_>) + Send + Sync>;

/// The models Conduit serves.
pub struct Repository {
    /// For [`Runtime::get`], which loads the library once per process on
    /// first need: a server without models never maps it (~20 MiB RSS).
    ml: MlConfig,
    budget: u64,
    dir: Option<PathBuf>,
    metrics: Metrics,
    entries: Mutex<BTreeMap<String, Arc<Entry>>>,
    /// One load at a time, so each measures only its own memory.
    load_lock: Mutex<()>,
    clock: AtomicU64,
    listeners: Mutex<Vec<Listener>>,
    max_input_bytes: usize,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("dir", &self.dir)
            .field("budget", &self.budget)
            .finish()
    }
}

/// A model in use by one request: it cannot be evicted until this is dropped.
#[derive(Debug)]
pub struct Lease {
    entry: Arc<Entry>,
    /// The model.
    pub loaded: Arc<Loaded>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.entry.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Lease {
    /// The model's name.
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// The model's statistics.
    pub fn stats(&self) -> &ModelStats {
        &self.entry.stats
    }

    /// Checks an input's name, dtype and shape against the model before its
    /// data is decoded (SECURITY.md I2); returns the input's index and
    /// element count.
    pub fn check_input(
        &self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        max_bytes: usize,
    ) -> Result<(usize, usize), Error> {
        self.loaded
            .meta
            .check_input(self.name(), name, dtype, shape, max_bytes)
    }

    /// Queues a request whose inputs passed [`Lease::check_input`] (any
    /// order, each input once). `done` gets every output, in graph order.
    pub fn submit(self, mut inputs: Vec<Tensor>, done: Done) {
        let meta = self.loaded.meta.clone();
        let order = |t: &Tensor| meta.inputs.iter().position(|s| s.name == t.name);
        inputs.sort_by_key(|t| order(t));
        let names_ok = inputs.len() == meta.inputs.len()
            && inputs
                .iter()
                .zip(&meta.inputs)
                .all(|(t, s)| t.name == s.name);
        if !names_ok {
            let want: Vec<&str> = meta.inputs.iter().map(|s| s.name.as_str()).collect();
            self.stats().failed();
            return done(Err(Error::BadInput(format!(
                "model {:?} takes exactly the inputs {}",
                self.name(),
                want.join(", ")
            ))));
        }
        let rows = if meta.max_batch_size > 0 {
            let r = inputs[0].shape[0];
            if inputs.iter().any(|t| t.shape[0] != r) {
                self.stats().failed();
                return done(Err(Error::BadInput(
                    "inputs disagree on the batch dimension (the first)".into(),
                )));
            }
            r
        } else {
            1
        };
        if let Err(e) = tensor::check_request(&meta.inputs, &inputs) {
            self.stats().failed();
            return done(Err(e));
        }
        let loaded = self.loaded.clone();
        // The lease rides with the job: the model stays until it is answered.
        let job = Job {
            inputs,
            rows,
            enqueued: Instant::now(),
            done: Box::new(move |r| {
                done(r);
                drop(self);
            }),
        };
        loaded.batcher.submit(job);
    }

    /// Queues texts (tokenized by this model's [`TextModel`]); `done` gets
    /// one vector per text, in order.
    pub fn submit_texts(self, texts: Vec<Tokens>, done: TextDone) {
        let loaded = self.loaded.clone();
        let job = TextJob {
            texts,
            enqueued: Instant::now(),
            done: Box::new(move |r| {
                done(r);
                drop(self);
            }),
        };
        loaded.batcher.submit_texts(job);
    }
}

impl Repository {
    /// Scans `cfg.models` (if set) and, when there is a repository to
    /// serve, loads the ONNX Runtime library (if it can). Without one the
    /// library is loaded on the first request that needs it.
    pub fn open(cfg: &MlConfig, metrics: Metrics) -> Arc<Repository> {
        let dir = (!cfg.models.is_empty()).then(|| PathBuf::from(&cfg.models));
        if dir.is_some() || cfg.repository_api {
            // The outcome is kept by Runtime::get; errors show in the index and on /v2.
            let _ = Runtime::get(cfg);
        }
        let repo = Repository {
            ml: cfg.clone(),
            budget: cfg.memory_budget_bytes,
            dir: dir.clone(),
            metrics,
            entries: Mutex::new(BTreeMap::new()),
            load_lock: Mutex::new(()),
            clock: AtomicU64::new(0),
            listeners: Mutex::new(Vec::new()),
            max_input_bytes: usize::try_from(cfg.max_input_bytes).unwrap_or(usize::MAX),
        };
        if let Some(dir) = &dir {
            match std::fs::read_dir(dir) {
                Ok(rd) => {
                    let mut names: Vec<String> = rd
                        .filter_map(Result::ok)
                        .filter(|e| e.path().is_dir())
                        .filter_map(|e| e.file_name().into_string().ok())
                        // Hidden directories (.git, a .venv) are not models.
                        .filter(|n| !n.starts_with('.'))
                        .collect();
                    names.sort();
                    for name in names {
                        if is_valid_name(&name) {
                            repo.entry_for(&name);
                        } else {
                            tracing::warn!(dir = %dir.display(), name, "skipping a model directory whose name is not [A-Za-z0-9._-]{{1,64}}");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot read the model repository")
                }
            }
        }
        Arc::new(repo)
    }

    fn entry_for(&self, name: &str) -> Option<Arc<Entry>> {
        let dir = self.dir.as_ref()?.join(name);
        let mut entries = lock(&self.entries);
        if let Some(e) = entries.get(name) {
            return Some(e.clone());
        }
        if !dir.is_dir() {
            return None;
        }
        let text = model_file(&dir)
            .is_ok_and(|(f, _)| text::is_text_model(&f, &dir))
            .then(|| {
                // A config.toml that does not parse fails the load, with why.
                ModelConfig::read(&dir)
                    .ok()
                    .and_then(|c| c.task)
                    .unwrap_or(Task::Embed)
            });
        let e = Arc::new(Entry {
            name: name.to_string(),
            text,
            dir,
            stats: Arc::new(self.metrics.model(name)),
            state: Mutex::new(State::Unloaded { explicit: false }),
            known: Mutex::new(None),
            last_used: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        });
        entries.insert(name.to_string(), e.clone());
        Some(e)
    }

    fn find(&self, name: &str) -> Result<Arc<Entry>, Error> {
        if !is_valid_name(name) {
            return Err(Error::InvalidName(name.to_string()));
        }
        lock(&self.entries)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    /// Whether ONNX Runtime is available (and why not).
    pub fn runtime(&self) -> Result<&'static Runtime, Error> {
        Runtime::get(&self.ml)
    }

    /// Most bytes of tensor data one request may carry.
    pub fn max_input_bytes(&self) -> usize {
        self.max_input_bytes
    }

    /// Most texts in one text request (`ml.max_texts_per_request`).
    pub fn max_texts(&self) -> usize {
        self.ml.max_texts_per_request
    }

    /// Names of every model in the repository.
    pub fn names(&self) -> Vec<String> {
        lock(&self.entries).keys().cloned().collect()
    }

    /// The text models' names (a `tokenizer.json` beside the graph) for
    /// `task` (any task: `None`), sorted.
    pub fn text_names(&self, task: Option<Task>) -> Vec<String> {
        lock(&self.entries)
            .values()
            .filter(|e| e.text.is_some() && (task.is_none() || e.text == task))
            .map(|e| e.name.clone())
            .collect()
    }

    /// Calls `f` whenever a model starts serving with new metadata or is
    /// withdrawn (see [`Change`]); at once, with `Serving`, for each model
    /// already known and not withdrawn.
    pub fn on_change(&self, f: impl Fn(&str, Change<'_>) + Send + Sync + 'static) {
        let known: Vec<(String, Arc<Metadata>)> = lock(&self.entries)
            .values()
            .filter(|e| !matches!(*lock(&e.state), State::Unloaded { explicit: true }))
            .filter_map(|e| Some((e.name.clone(), lock(&e.known).clone()?)))
            .collect();
        for (n, m) in known {
            f(&n, Change::Serving(&m));
        }
        lock(&self.listeners).push(Box::new(f));
    }

    fn tell(&self, name: &str, change: Change<'_>) {
        for f in lock(&self.listeners).iter() {
            f(name, change);
        }
    }

    /// Metadata from the last load, without loading.
    pub fn known_metadata(&self, name: &str) -> Option<Arc<Metadata>> {
        let e = self.find(name).ok()?;
        let m = lock(&e.known).clone();
        m
    }

    /// The model, loading it first if it is not in memory (lazy loading and
    /// transparent reload after eviction). Counts as a use for the LRU.
    pub fn lease(&self, name: &str) -> Result<Lease, Error> {
        self.lease_with(name, true)?
            .ok_or_else(|| Error::Unavailable(format!("model {name:?} is not loaded")))
    }

    /// Like [`Repository::lease`]; with `may_load` false, `Ok(None)` means
    /// the model would have to be loaded first (callers on an I/O loop then
    /// move to a worker thread).
    pub fn lease_with(&self, name: &str, may_load: bool) -> Result<Option<Lease>, Error> {
        let e = self.find(name)?;
        loop {
            {
                let st = lock(&e.state);
                match &*st {
                    State::Ready(l) => {
                        e.in_flight.fetch_add(1, Ordering::AcqRel);
                        e.last_used
                            .store(self.clock.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
                        return Ok(Some(Lease {
                            entry: e.clone(),
                            loaded: l.clone(),
                        }));
                    }
                    State::Failed(why) => {
                        return Err(Error::ModelLoad {
                            name: name.to_string(),
                            why: why.clone(),
                        })
                    }
                    State::Unloaded { explicit: true } => {
                        return Err(Error::Unavailable(format!(
                            "model {name:?} was unloaded through the repository API; load it again to serve it"
                        )))
                    }
                    State::Unloaded { explicit: false } if !may_load => return Ok(None),
                    State::Unloaded { explicit: false } => {}
                }
            }
            self.load_entry(&e, false)?;
        }
    }

    /// Loads (or reloads) `name` through the repository API. A failed
    /// reload leaves the loaded version serving.
    pub fn load(&self, name: &str) -> Result<(), Error> {
        if !is_valid_name(name) {
            return Err(Error::InvalidName(name.to_string()));
        }
        let e = self
            .entry_for(name)
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        self.load_entry(&e, true)
    }

    /// Unloads `name` through the repository API: new requests get 503;
    /// requests in flight finish first.
    pub fn unload(&self, name: &str) -> Result<(), Error> {
        let e = self.find(name)?;
        let was_withdrawn = {
            let mut st = lock(&e.state);
            let was = matches!(*st, State::Unloaded { explicit: true });
            *st = State::Unloaded { explicit: true };
            was
        };
        e.stats.set_memory(0);
        tracing::info!(model = name, "model unloaded");
        if !was_withdrawn {
            self.tell(name, Change::Withdrawn);
        }
        Ok(())
    }

    /// Every model and its state.
    pub fn index(&self) -> Vec<IndexEntry> {
        let entries: Vec<Arc<Entry>> = lock(&self.entries).values().cloned().collect();
        entries
            .iter()
            .map(|e| {
                let st = lock(&e.state);
                let (state, version, reason, memory) = match &*st {
                    State::Ready(l) => ("READY", l.version.clone(), String::new(), l.memory),
                    State::Failed(why) => ("UNAVAILABLE", String::new(), why.clone(), 0),
                    State::Unloaded { explicit } => (
                        "UNLOADED",
                        String::new(),
                        if *explicit {
                            "unloaded through the repository API".into()
                        } else {
                            String::new()
                        },
                        0,
                    ),
                };
                IndexEntry {
                    name: e.name.clone(),
                    version,
                    state,
                    reason,
                    memory,
                }
            })
            .collect()
    }

    /// The statistics of `name`.
    pub fn stats(&self, name: &str) -> Result<(Arc<ModelStats>, String), Error> {
        let e = self.find(name)?;
        let version = match &*lock(&e.state) {
            State::Ready(l) => l.version.clone(),
            State::Unloaded { .. } | State::Failed(_) => String::new(),
        };
        Ok((e.stats.clone(), version))
    }

    /// Loads every model not loaded yet, one after another, and returns
    /// when each has loaded or failed (a failure is in the index, with why).
    /// Takes as long as the loads: each is bounded by its model's files.
    pub fn load_all(&self) {
        if self.dir.is_none() || self.runtime().is_err() {
            return;
        }
        for name in self.names() {
            if let Ok(e) = self.find(&name) {
                if matches!(*lock(&e.state), State::Unloaded { explicit: false }) {
                    let _ = self.load_entry(&e, false);
                }
            }
        }
    }

    /// [`Repository::load_all`] on a background thread.
    pub fn load_all_in_background(self: &Arc<Self>) {
        if self.dir.is_none() || self.runtime().is_err() {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("conduit-model-loader".into())
            .spawn(move || me.load_all());
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the model loader thread");
        }
    }

    fn load_entry(&self, e: &Arc<Entry>, explicit: bool) -> Result<(), Error> {
        let rt = self.runtime()?;
        let _one_at_a_time = lock(&self.load_lock);
        // Someone else may have loaded it while we waited.
        if !explicit && matches!(*lock(&e.state), State::Ready(_) | State::Failed(_)) {
            return Ok(());
        }
        let withdrawn = matches!(*lock(&e.state), State::Unloaded { explicit: true });
        let t = Instant::now();
        // A model evicted or unloaded just before frees its sessions on its
        // own threads; let that finish, or it would be subtracted from this one.
        super::batcher::settle(std::time::Duration::from_secs(5));
        let probe = memory::Probe::start();
        let built = build(rt, e);
        match built {
            Ok((cfg, meta, text, version, file, sessions)) => {
                let memory = probe.cost(&file, sessions.len());
                let meta = Arc::new(meta);
                let text = text.map(Arc::new);
                let batcher = Batcher::start(
                    &e.name,
                    sessions,
                    meta.clone(),
                    text.clone(),
                    &cfg,
                    e.stats.clone(),
                )?;
                let loaded = Arc::new(Loaded {
                    meta: meta.clone(),
                    text,
                    version,
                    memory,
                    cfg,
                    batcher,
                });
                // Listeners first: once the index says READY, the model's tool exists.
                let changed = lock(&e.known).replace(meta.clone()).as_deref() != Some(&*meta);
                if changed || withdrawn {
                    self.tell(&e.name, Change::Serving(&meta));
                }
                *lock(&e.state) = State::Ready(loaded);
                e.last_used.store(
                    self.clock.fetch_add(1, Ordering::Relaxed) + 1,
                    Ordering::Relaxed,
                );
                e.stats.set_memory(memory);
                tracing::info!(model = %e.name, memory, ms = t.elapsed().as_millis() as u64, max_batch_size = meta.max_batch_size, "model loaded");
                self.enforce_budget(&e.name);
                Ok(())
            }
            Err(why) => {
                tracing::error!(model = %e.name, error = %why, "model failed to load");
                let mut st = lock(&e.state);
                if !matches!(*st, State::Ready(_)) {
                    *st = State::Failed(why.clone());
                }
                Err(Error::ModelLoad {
                    name: e.name.clone(),
                    why,
                })
            }
        }
    }

    /// Evicts least recently used idle models until the loaded ones fit the budget.
    fn enforce_budget(&self, keep: &str) {
        if self.budget == 0 {
            return;
        }
        let entries: Vec<Arc<Entry>> = lock(&self.entries).values().cloned().collect();
        let memory_of = |e: &Entry| match &*lock(&e.state) {
            State::Ready(l) => l.memory,
            State::Unloaded { .. } | State::Failed(_) => 0,
        };
        let mut total: u64 = entries.iter().map(|e| memory_of(e)).sum();
        let mut candidates: Vec<&Arc<Entry>> = entries
            .iter()
            .filter(|e| e.name != keep && memory_of(e) > 0)
            .collect();
        candidates.sort_by_key(|e| e.last_used.load(Ordering::Relaxed));
        for e in candidates {
            if total <= self.budget {
                break;
            }
            let mut st = lock(&e.state);
            let State::Ready(l) = &*st else { continue };
            // Never evict a model with requests in flight (SECURITY.md I6).
            if e.in_flight.load(Ordering::Acquire) > 0 {
                continue;
            }
            total = total.saturating_sub(l.memory);
            tracing::info!(model = %e.name, memory = l.memory, budget = self.budget, "evicting the least recently used model");
            *st = State::Unloaded { explicit: false };
            e.stats.set_memory(0);
        }
        if total > self.budget {
            tracing::warn!(
                total,
                budget = self.budget,
                "loaded models exceed ml.memory_budget_bytes; the others are busy"
            );
        }
    }
}

type Built = (
    ModelConfig,
    Metadata,
    Option<TextModel>,
    String,
    PathBuf,
    Vec<ort::session::Session>,
);

/// Finds the model file, reads its config, opens its sessions and warms each up.
fn build(rt: &Runtime, e: &Entry) -> Result<Built, String> {
    let cfg = ModelConfig::read(&e.dir)?;
    let (file, version) = model_file(&e.dir)?;
    let mut sessions = Vec::with_capacity(cfg.instances);
    let mut meta: Option<Metadata> = None;
    for _ in 0..cfg.instances {
        let mut s = model::open(rt, &file, cfg.intra_op_threads)?;
        let m = match meta.take() {
            Some(m) => m,
            None => model::metadata(&s, &cfg, &file)?,
        };
        let warm = model::warmup_inputs(&m);
        model::run(&mut s, &m, &warm, false).map_err(|e| format!("warm-up run failed: {e}"))?;
        meta = Some(m);
        sessions.push(s);
    }
    let mut meta = meta.ok_or("instances must be at least 1")?;
    let text = TextModel::load(&file, &e.dir, &cfg, &meta)?;
    meta.text = text.as_ref().map(TextModel::summary);
    Ok((cfg, meta, text, version, file, sessions))
}

/// `dir/model.onnx` (version `1`), or the highest numeric `dir/<v>/model.onnx`.
fn model_file(dir: &Path) -> Result<(PathBuf, String), String> {
    let flat = dir.join("model.onnx");
    if flat.is_file() {
        return Ok((flat, "1".into()));
    }
    let best = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|d| {
            let v: u64 = d.file_name().to_str()?.parse().ok()?;
            d.path().join("model.onnx").is_file().then_some(v)
        })
        .max();
    match best {
        Some(v) => Ok((dir.join(v.to_string()).join("model.onnx"), v.to_string())),
        None => Err(format!(
            "no model file: expected {} or {}/<version>/model.onnx",
            flat.display(),
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_restricted() {
        for ok in ["demo", "resnet-18", "a.b_c", &"x".repeat(64)] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a b",
            "é",
            &"x".repeat(65),
            "http:",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
