//! The dynamic batcher: one bounded queue per model, one thread per session
//! instance. A thread takes the first waiting request, gathers more until
//! `max_batch_size` rows, a preferred size or `max_queue_delay_us`, runs
//! each group of shape-compatible requests as one batch and hands every
//! caller its rows. Texts (of a text model) are batched by tokens instead:
//! the texts of the requests gathered are sorted by length and cut into
//! runs within `max_batch_tokens` padded tokens, each padded to its own
//! longest text, and every request is answered once, in its own order.

use super::model::{self, Metadata, ModelConfig};
use super::stats::ModelStats;
use super::tensor::{self, Tensor};
use super::text::{TextModel, Tokens};
use super::Error;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use ort::session::Session;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Called once with a request's outputs (every model output, graph order).
pub type Done = Box<dyn FnOnce(Result<Vec<Tensor>, Error>) + Send>;

/// One request waiting for a batch.
pub struct Job {
    /// Inputs in the model's input order, already checked against its metadata.
    pub inputs: Vec<Tensor>,
    /// Rows along the batch axis (1 for a model without batching).
    pub rows: usize,
    /// When it was queued.
    pub enqueued: Instant,
    /// Where the answer goes.
    pub done: Done,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("rows", &self.rows).finish()
    }
}

/// Called once with one vector per text, in the request's order.
pub type TextDone = Box<dyn FnOnce(Result<Vec<Vec<f32>>, Error>) + Send>;

/// One request of texts (tokenized already) waiting for a run.
pub struct TextJob {
    /// Its texts.
    pub texts: Vec<Tokens>,
    /// When it was queued.
    pub enqueued: Instant,
    /// Where the vectors go.
    pub done: TextDone,
}

impl std::fmt::Debug for TextJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextJob")
            .field("texts", &self.texts.len())
            .finish()
    }
}

/// What waits in a model's queue.
#[derive(Debug)]
enum Work {
    Tensors(Job),
    Texts(TextJob),
}

/// The queue of one loaded model. Dropping it lets its threads finish what
/// is queued and exit, which frees the sessions.
#[derive(Debug)]
pub struct Batcher {
    tx: Sender<Work>,
    workers: usize,
    stats: Arc<ModelStats>,
}

/// Worker threads whose batcher was dropped but which have not yet freed
/// their session: a load measuring memory waits for them ([`settle`]).
static RETIRING: AtomicUsize = AtomicUsize::new(0);

impl Drop for Batcher {
    fn drop(&mut self) {
        RETIRING.fetch_add(self.workers, Ordering::AcqRel);
    }
}

/// Waits (at most `max`) until every dropped batcher's sessions are freed,
/// so a memory measurement that starts now is not lowered by their frees.
pub fn settle(max: Duration) {
    let until = Instant::now() + max;
    while RETIRING.load(Ordering::Acquire) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
}

struct Worker {
    rx: Receiver<Work>,
    session: Session,
    meta: Arc<Metadata>,
    text: Option<Arc<TextModel>>,
    delay: Duration,
    preferred: Vec<usize>,
    timeout: Duration,
    stats: Arc<ModelStats>,
    /// Input elements of a usual run (a moving average), to tell an
    /// outsized run whose arena growth should not be kept.
    usual_elems: f64,
}

/// A run this many times larger than usual gives its arena growth back.
const OUTSIZED_FACTOR: f64 = 4.0;
/// Runs with fewer input elements than this never shrink the arena (their
/// growth is small, and shrinking costs the next run its allocations).
const SHRINK_FLOOR_ELEMS: usize = 1 << 16;
/// Weight of one run in `usual_elems`.
const USUAL_WEIGHT: f64 = 1.0 / 16.0;

impl Batcher {
    /// Starts one thread per session.
    pub fn start(
        name: &str,
        sessions: Vec<Session>,
        meta: Arc<Metadata>,
        text: Option<Arc<TextModel>>,
        cfg: &ModelConfig,
        stats: Arc<ModelStats>,
    ) -> Result<Batcher, Error> {
        let (tx, rx) = crossbeam_channel::bounded(cfg.max_queue_size);
        let workers = sessions.len();
        for (i, session) in sessions.into_iter().enumerate() {
            let w = Worker {
                rx: rx.clone(),
                session,
                meta: meta.clone(),
                text: text.clone(),
                delay: Duration::from_micros(cfg.max_queue_delay_us),
                preferred: cfg.preferred_batch_sizes.clone(),
                timeout: Duration::from_millis(cfg.queue_timeout_ms),
                stats: stats.clone(),
                usual_elems: 0.0,
            };
            std::thread::Builder::new()
                .name(format!("conduit-model-{name}-{i}"))
                .spawn(move || w.run())
                .map_err(|e| Error::ModelLoad {
                    name: name.to_string(),
                    why: format!("cannot start a batcher thread: {e}"),
                })?;
        }
        Ok(Batcher { tx, workers, stats })
    }

    /// Queues a job. A full queue or a stopped model answers it at once
    /// with why, counted as a failure (as a queue timeout is).
    pub fn submit(&self, job: Job) {
        self.send(Work::Tensors(job));
    }

    /// Queues texts of a text model; as [`Batcher::submit`] otherwise.
    pub fn submit_texts(&self, job: TextJob) {
        self.send(Work::Texts(job));
    }

    fn send(&self, w: Work) {
        let (e, w) = match self.tx.try_send(w) {
            Ok(()) => return,
            Err(TrySendError::Full(w)) => (Error::QueueFull, w),
            Err(TrySendError::Disconnected(w)) => (Error::Unavailable("model stopped".into()), w),
        };
        self.stats.failed();
        match w {
            Work::Tensors(j) => (j.done)(Err(e)),
            Work::Texts(j) => (j.done)(Err(e)),
        }
    }

    /// Requests waiting now.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }
}

/// A queued request, as the batcher admits or expires it.
trait Queued {
    fn enqueued(&self) -> Instant;
    fn fail(self, e: Error);
}

impl Queued for Job {
    fn enqueued(&self) -> Instant {
        self.enqueued
    }
    fn fail(self, e: Error) {
        (self.done)(Err(e))
    }
}

impl Queued for TextJob {
    fn enqueued(&self) -> Instant {
        self.enqueued
    }
    fn fail(self, e: Error) {
        (self.done)(Err(e))
    }
}

impl Worker {
    fn run(mut self) {
        let mut carry: Option<Work> = None;
        loop {
            let first = match carry.take() {
                Some(w) => w,
                None => match self.rx.recv() {
                    Ok(w) => w,
                    Err(_) => {
                        drop(self);
                        // Saturating: a batcher whose start failed never counted its threads.
                        let _ = RETIRING.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                            Some(v.saturating_sub(1))
                        });
                        return;
                    }
                },
            };
            carry = match first {
                Work::Tensors(j) => self.gather_tensors(j),
                Work::Texts(j) => self.gather_texts(j),
            };
        }
    }

    /// The next waiting work, within the gathering window.
    fn next_waiting(&self, deadline: Instant) -> Option<Work> {
        if self.delay.is_zero() {
            self.rx.try_recv().ok()
        } else {
            self.rx.recv_deadline(deadline).ok()
        }
    }

    /// Gathers tensor requests after `first` and runs them; gives back the
    /// work that did not fit.
    fn gather_tensors(&mut self, first: Job) -> Option<Work> {
        let max = self.meta.max_batch_size;
        let mut rows = first.rows;
        let mut batch = vec![first];
        let mut carry = None;
        if max > 0 {
            let deadline = Instant::now() + self.delay;
            while rows < max && !self.preferred.contains(&rows) {
                match self.next_waiting(deadline) {
                    Some(Work::Tensors(j)) if rows + j.rows <= max => {
                        rows += j.rows;
                        batch.push(j);
                    }
                    Some(other) => {
                        carry = Some(other);
                        break;
                    }
                    None => break,
                }
            }
        }
        self.execute(batch);
        carry
    }

    /// Gathers text requests after `first` (up to a full run of tokens or
    /// texts) and runs them; gives back the work that did not fit.
    fn gather_texts(&mut self, first: TextJob) -> Option<Work> {
        let Some(text) = self.text.clone() else {
            (first.done)(Err(Error::BadInput("this model does not take text".into())));
            return None;
        };
        let tokens = |j: &TextJob| j.texts.iter().map(Tokens::len).sum::<usize>();
        let (mut n, mut count) = (tokens(&first), first.texts.len());
        let mut batch = vec![first];
        let mut carry = None;
        let deadline = Instant::now() + self.delay;
        while n < text.max_batch_tokens && count < text.max_batch_texts {
            match self.next_waiting(deadline) {
                Some(Work::Texts(j)) => {
                    n += tokens(&j);
                    count += j.texts.len();
                    batch.push(j);
                }
                Some(other) => {
                    carry = Some(other);
                    break;
                }
                None => break,
            }
        }
        self.execute_texts(&text, batch);
        carry
    }

    /// Runs the texts of `batch` in runs of like length and answers each
    /// request once, with its vectors in its order (or the first error of
    /// a run it had texts in).
    fn execute_texts(&mut self, text: &TextModel, batch: Vec<TextJob>) {
        let jobs = self.admit(batch);
        // Every text of every request: (request, its index there).
        let at: Vec<(usize, usize)> = jobs
            .iter()
            .enumerate()
            .flat_map(|(j, job)| (0..job.texts.len()).map(move |k| (j, k)))
            .collect();
        let lens: Vec<usize> = at.iter().map(|&(j, k)| jobs[j].texts[k].len()).collect();
        let mut vectors: Vec<Vec<Option<Vec<f32>>>> =
            jobs.iter().map(|j| vec![None; j.texts.len()]).collect();
        let mut failed: Vec<Option<Error>> = vec![None; jobs.len()];
        for run in text.plan(&lens) {
            let texts: Vec<&Tokens> = run.iter().map(|&i| &jobs[at[i].0].texts[at[i].1]).collect();
            let inputs = text.inputs(&self.meta, &texts);
            let out = self
                .run_once(&inputs, texts.len())
                .and_then(|outs| text.vectors(&outs, &texts));
            match out {
                Ok(vs) => {
                    for (&i, v) in run.iter().zip(vs) {
                        let (j, k) = at[i];
                        vectors[j][k] = Some(v);
                    }
                }
                Err(e) => {
                    for &i in &run {
                        failed[at[i].0].get_or_insert_with(|| e.clone());
                    }
                }
            }
        }
        for ((job, vs), err) in jobs.into_iter().zip(vectors).zip(failed) {
            let result = match err {
                Some(e) => Err(e),
                None => vs
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| Error::Inference("a text was not run".into())),
            };
            match &result {
                Ok(_) => self
                    .stats
                    .succeeded(job.texts.len(), job.enqueued.elapsed()),
                Err(_) => self.stats.failed(),
            }
            (job.done)(result);
        }
    }

    /// The jobs of `batch` still within the queue timeout (their wait
    /// counted); the others are answered with `QueueTimeout`.
    fn admit<J: Queued>(&mut self, batch: Vec<J>) -> Vec<J> {
        let start = Instant::now();
        let mut live = Vec::with_capacity(batch.len());
        for job in batch {
            let waited = start.saturating_duration_since(job.enqueued());
            if waited > self.timeout {
                self.stats.failed();
                job.fail(Error::QueueTimeout(self.timeout));
                continue;
            }
            self.stats.queued(waited);
            live.push(job);
        }
        live
    }

    fn execute(&mut self, batch: Vec<Job>) {
        let mut groups: Vec<(Vec<&[usize]>, Vec<usize>)> = Vec::new();
        let mut live: Vec<Option<Job>> = self.admit(batch).into_iter().map(Some).collect();
        // Requests run together only when every input's non-batch dims agree.
        for (i, job) in live.iter().enumerate() {
            let Some(job) = job else { continue };
            let key: Vec<&[usize]> = job
                .inputs
                .iter()
                .map(|t| t.shape.get(1..).unwrap_or_default())
                .collect();
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let groups: Vec<Vec<usize>> = groups.into_iter().map(|(_, m)| m).collect();
        for members in groups {
            let jobs: Vec<Job> = members.iter().filter_map(|&i| live[i].take()).collect();
            self.run_group(jobs);
        }
    }

    fn run_group(&mut self, jobs: Vec<Job>) {
        if jobs.len() == 1 || self.meta.max_batch_size == 0 {
            for job in jobs {
                let out = self.run_once(&job.inputs, job.rows);
                self.finish(job, out);
            }
            return;
        }
        let rows: Vec<usize> = jobs.iter().map(|j| j.rows).collect();
        let merged: Result<Vec<Tensor>, Error> = (0..self.meta.inputs.len())
            .map(|k| {
                let parts: Vec<&Tensor> = jobs.iter().map(|j| &j.inputs[k]).collect();
                tensor::concat(&parts)
            })
            .collect();
        let split = merged
            .and_then(|inputs| self.run_once(&inputs, rows.iter().sum()))
            .and_then(|outs| {
                let per_output: Vec<Vec<Tensor>> = outs
                    .iter()
                    .map(|t| tensor::split(t, &rows))
                    .collect::<Result<_, _>>()?;
                Ok(per_output)
            });
        match split {
            Ok(per_output) => {
                let mut iters: Vec<_> = per_output.into_iter().map(Vec::into_iter).collect();
                for job in jobs {
                    let outs: Vec<Tensor> = iters.iter_mut().filter_map(Iterator::next).collect();
                    self.finish(job, Ok(outs));
                }
            }
            // One bad request must not fail the others: run them apart.
            Err(e) => {
                tracing::debug!(error = %e, "batched run failed; running its requests one by one");
                for job in jobs {
                    let out = self.run_once(&job.inputs, job.rows);
                    self.finish(job, out);
                }
            }
        }
    }

    fn run_once(&mut self, inputs: &[Tensor], rows: usize) -> Result<Vec<Tensor>, Error> {
        let t = Instant::now();
        let elems: usize = inputs.iter().map(|t| t.data.len()).sum();
        let shrink =
            elems >= SHRINK_FLOOR_ELEMS && elems as f64 > OUTSIZED_FACTOR * self.usual_elems;
        self.usual_elems += (elems as f64 - self.usual_elems) * USUAL_WEIGHT;
        let (session, meta) = (&mut self.session, &self.meta);
        let out = std::panic::catch_unwind(AssertUnwindSafe(|| {
            model::run(session, meta, inputs, shrink)
        }))
        .unwrap_or_else(|_| Err(Error::Inference("ONNX Runtime call panicked".into())));
        self.stats.executed(rows, t.elapsed());
        out
    }

    fn finish(&self, job: Job, out: Result<Vec<Tensor>, Error>) {
        match &out {
            Ok(_) => self.stats.succeeded(job.rows, job.enqueued.elapsed()),
            Err(_) => self.stats.failed(),
        }
        (job.done)(out);
    }
}
