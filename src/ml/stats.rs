//! Per-model numbers: Prometheus series for `/metrics` and the running
//! totals the KServe statistics extension reports.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    model: String,
    outcome: &'static str,
}

type HistFamily = Family<ModelLabel, Histogram, fn() -> Histogram>;

fn batch_hist() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 10))
}

fn time_hist() -> Histogram {
    // 10 µs .. ~10 s
    Histogram::new(exponential_buckets(1e-5, 4.0, 11))
}

/// The ML layer's Prometheus families.
#[derive(Debug, Clone)]
pub struct Metrics {
    requests: Family<OutcomeLabel, Counter>,
    batch_size: HistFamily,
    queue: HistFamily,
    compute: HistFamily,
    memory: Family<ModelLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            batch_size: Family::new_with_constructor(batch_hist),
            queue: Family::new_with_constructor(time_hist),
            compute: Family::new_with_constructor(time_hist),
            memory: Family::default(),
        }
    }
}

impl Metrics {
    /// Adds the families to `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "conduit_inference_requests",
            "Inference requests per model and outcome",
            self.requests.clone(),
        );
        r.register(
            "conduit_inference_batch_size",
            "Rows per ONNX Runtime run, per model",
            self.batch_size.clone(),
        );
        r.register(
            "conduit_inference_queue_seconds",
            "Time requests waited in the batch queue, per model",
            self.queue.clone(),
        );
        r.register(
            "conduit_inference_compute_seconds",
            "Time of each ONNX Runtime run, per model",
            self.compute.clone(),
        );
        r.register(
            "conduit_model_memory_bytes",
            "Memory a loaded model holds (measured around load and warm-up; 0 when unloaded)",
            self.memory.clone(),
        );
    }

    /// The series of one model.
    pub fn model(&self, name: &str) -> ModelStats {
        let m = ModelLabel {
            model: name.to_string(),
        };
        let outcome = |o| OutcomeLabel {
            model: name.to_string(),
            outcome: o,
        };
        // One statement each: get_or_create holds a read guard until the
        // statement ends, and a second insert in the same one would deadlock.
        let ok = self.requests.get_or_create(&outcome("success")).clone();
        let failed = self.requests.get_or_create(&outcome("failure")).clone();
        let batch_size = self.batch_size.get_or_create(&m).clone();
        let queue = self.queue.get_or_create(&m).clone();
        let compute = self.compute.get_or_create(&m).clone();
        let memory = self.memory.get_or_create(&m).clone();
        ModelStats {
            ok,
            failed,
            batch_size,
            queue,
            compute,
            memory,
            totals: Totals::default(),
        }
    }
}

/// Running totals in the shape of Triton's statistics extension.
#[derive(Debug, Default)]
pub struct Totals {
    /// Successful requests and their end-to-end time.
    pub success_count: AtomicU64,
    /// Nanoseconds of those requests.
    pub success_ns: AtomicU64,
    /// Failed requests.
    pub fail_count: AtomicU64,
    /// Requests that left the queue, and how long they waited.
    pub queue_count: AtomicU64,
    /// Nanoseconds in the queue.
    pub queue_ns: AtomicU64,
    /// ONNX Runtime runs.
    pub execution_count: AtomicU64,
    /// Nanoseconds in ONNX Runtime.
    pub compute_ns: AtomicU64,
    /// Rows inferred.
    pub inference_count: AtomicU64,
    /// Milliseconds since the epoch of the last request answered.
    pub last_inference_ms: AtomicU64,
}

/// One model's series and totals.
#[derive(Debug)]
pub struct ModelStats {
    ok: Counter,
    failed: Counter,
    batch_size: Histogram,
    queue: Histogram,
    compute: Histogram,
    memory: Gauge,
    /// Totals for the statistics endpoint.
    pub totals: Totals,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl ModelStats {
    pub(crate) fn queued(&self, waited: Duration) {
        self.queue.observe(waited.as_secs_f64());
        self.totals.queue_count.fetch_add(1, Relaxed);
        self.totals.queue_ns.fetch_add(ns(waited), Relaxed);
    }

    pub(crate) fn executed(&self, rows: usize, took: Duration) {
        self.batch_size.observe(rows as f64);
        self.compute.observe(took.as_secs_f64());
        self.totals.execution_count.fetch_add(1, Relaxed);
        self.totals.compute_ns.fetch_add(ns(took), Relaxed);
    }

    pub(crate) fn succeeded(&self, rows: usize, took: Duration) {
        self.ok.inc();
        let t = &self.totals;
        t.success_count.fetch_add(1, Relaxed);
        t.success_ns.fetch_add(ns(took), Relaxed);
        t.inference_count.fetch_add(rows as u64, Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        t.last_inference_ms.store(now, Relaxed);
    }

    /// Counts a request that failed anywhere after it reached the model.
    pub fn failed(&self) {
        self.failed.inc();
        self.totals.fail_count.fetch_add(1, Relaxed);
    }

    pub(crate) fn set_memory(&self, bytes: u64) {
        self.memory.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}
