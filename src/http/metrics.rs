//! HTTP metrics: open connections, requests by route and status, latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Route label used for requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

fn latency_histogram() -> Histogram {
    // 10 µs … ~2.6 s, ×4 per bucket.
    Histogram::new(exponential_buckets(0.000_01, 4.0, 10))
}

/// The http layer's Prometheus metrics.
#[derive(Debug)]
pub struct Metrics {
    open_connections: Gauge,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            open_connections: Gauge::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl Metrics {
    /// Registers every metric in `registry` under the `conduit_http_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "conduit_http_open_connections",
            "Open HTTP connections",
            self.open_connections.clone(),
        );
        registry.register(
            "conduit_http_requests",
            "HTTP requests by route and status",
            self.requests.clone(),
        );
        registry.register(
            "conduit_http_request_duration_seconds",
            "Time from a request's arrival to its response being queued",
            self.latency.clone(),
        );
    }

    pub(crate) fn conn_opened(&self) {
        self.open_connections.inc();
    }

    pub(crate) fn conn_closed(&self) {
        self.open_connections.dec();
    }

    pub(crate) fn record(&self, route: &'static str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }
}
