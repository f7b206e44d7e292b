//! HTTP metrics: open connections, requests by route and status, latency.
//!
//! PERF: prometheus-client's `Family` hashes its labels and its `Histogram`
//! takes a write lock on every observation; on the hot path that was ~7% of
//! server CPU in pipelined `/plaintext` (perf, benches/load/run.sh). Here every
//! route owns plain atomics, indexed by route and status, and a `Collector`
//! turns them into Prometheus families at scrape time.

use super::router::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Route label used for requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Latency bucket upper bounds in ns: 10 µs × 4ⁿ, up to ~2.6 s.
const BUCKETS_NS: [u64; 10] = [
    10_000,
    40_000,
    160_000,
    640_000,
    2_560_000,
    10_240_000,
    40_960_000,
    163_840_000,
    655_360_000,
    2_621_440_000,
];
const FIRST_STATUS: u16 = 100;
const STATUSES: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug)]
struct RouteStats {
    label: &'static str,
    by_status: Box<[AtomicU64]>,
    buckets: [AtomicU64; BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl RouteStats {
    fn new(label: &'static str) -> RouteStats {
        RouteStats {
            label,
            by_status: (0..STATUSES).map(|_| AtomicU64::new(0)).collect(),
            buckets: Default::default(),
            sum_ns: AtomicU64::new(0),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    open_connections: Gauge,
    /// One entry per route (by `Route::index`), then one for unmatched requests.
    routes: OnceLock<Vec<RouteStats>>,
}

/// The http layer's Prometheus metrics. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Inner>);

impl Metrics {
    /// Registers every metric in `registry` under the `conduit_http_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "conduit_http_open_connections",
            "Open HTTP connections",
            self.0.open_connections.clone(),
        );
        registry.register_collector(Box::new(self.clone()));
    }

    /// Sizes the per-route tables for `router`; called once when serving starts.
    pub(crate) fn bind(&self, router: &Router) {
        let mut v: Vec<RouteStats> = router
            .routes()
            .iter()
            .map(|r| RouteStats::new(r.label))
            .collect();
        v.push(RouteStats::new(UNMATCHED));
        let _ = self.0.routes.set(v);
    }

    pub(crate) fn conn_opened(&self) {
        self.0.open_connections.inc();
    }

    pub(crate) fn conn_closed(&self) {
        self.0.open_connections.dec();
    }

    /// Records `n` requests with the same route (an index, or `None` for
    /// unmatched), status and latency.
    pub(crate) fn record(&self, route: Option<usize>, status: u16, elapsed: Duration, n: u32) {
        let n = u64::from(n);
        let Some(routes) = self.0.routes.get() else {
            return;
        };
        let stats = match route.and_then(|i| routes.get(i)) {
            Some(s) => s,
            None => match routes.last() {
                Some(s) => s,
                None => return,
            },
        };
        let si = (status.clamp(FIRST_STATUS, FIRST_STATUS + STATUSES as u16 - 1) - FIRST_STATUS)
            as usize;
        if let Some(c) = stats.by_status.get(si) {
            c.fetch_add(n, Ordering::Relaxed);
        }
        let ns = elapsed.as_nanos().min(u64::MAX as u128) as u64;
        let bi = BUCKETS_NS
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(BUCKETS_NS.len());
        if let Some(b) = stats.buckets.get(bi) {
            b.fetch_add(n, Ordering::Relaxed);
        }
        // The count is the sum of the buckets: one atomic fewer per request.
        stats
            .sum_ns
            .fetch_add(ns.saturating_mul(n), Ordering::Relaxed);
    }
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(routes) = self.0.routes.get() else {
            return Ok(());
        };
        let mut e = encoder.encode_descriptor(
            "conduit_http_requests",
            "HTTP requests by route and status",
            None,
            MetricType::Counter,
        )?;
        for r in routes {
            for (i, c) in r.by_status.iter().enumerate() {
                let v = c.load(Ordering::Relaxed);
                if v > 0 {
                    let labels = RequestLabels {
                        route: r.label,
                        status: FIRST_STATUS + i as u16,
                    };
                    ConstCounter::new(v).encode(e.encode_family(&labels)?)?;
                }
            }
        }
        let mut e = encoder.encode_descriptor(
            "conduit_http_request_duration_seconds",
            "Time from a request's arrival to its response being queued",
            None,
            MetricType::Histogram,
        )?;
        for r in routes {
            let count: u64 = r.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum();
            if count == 0 {
                continue;
            }
            let buckets: Vec<(f64, u64)> = BUCKETS_NS
                .iter()
                .map(|&b| b as f64 / 1e9)
                .chain(std::iter::once(f64::MAX))
                .zip(r.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
                .collect();
            let sum = r.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
            e.encode_family(&RouteLabels { route: r.label })?
                .encode_histogram::<()>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}
