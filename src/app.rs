//! Wiring: config → routes → a running server.

use crate::config::Config;
use crate::http::{self, Cx, Method, Mode, Reply, Request, Response, Router};
use crate::{demo, mcp, ml, net};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A running Conduit server.
#[derive(Debug)]
pub struct Running {
    server: net::Server,
    ready: Arc<AtomicBool>,
    mcp: Option<Arc<mcp::Server>>,
    models: Arc<ml::Repository>,
}

impl Running {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Starts a graceful shutdown: `/health/ready` turns 503, no new
    /// connections are accepted, in-flight requests finish (up to the drain
    /// timeout), SSE streams end cleanly.
    pub fn shutdown(&self) {
        self.ready.store(false, Ordering::Release);
        self.server.shutdown_handle().shutdown();
    }

    /// A cloneable handle that can call [`Running::shutdown`] from another thread.
    pub fn shutdown_handle(&self) -> impl Fn() + Send + Sync + Clone + 'static {
        let (h, ready) = (self.server.shutdown_handle(), self.ready.clone());
        move || {
            ready.store(false, Ordering::Release);
            h.shutdown();
        }
    }

    /// The MCP server, if MCP is enabled.
    pub fn mcp(&self) -> Option<&Arc<mcp::Server>> {
        self.mcp.as_ref()
    }

    /// The model repository.
    pub fn models(&self) -> &Arc<ml::Repository> {
        &self.models
    }

    /// Waits for the loops to exit after a shutdown. Returns how many
    /// requests the drain deadline cut off (0: none was lost).
    pub fn join(self) -> usize {
        self.server.join()
    }
}

/// Why the server could not start.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The network layer failed to start.
    #[error(transparent)]
    Net(#[from] net::Error),
    /// Authentication could not be set up.
    #[error(transparent)]
    Auth(#[from] crate::auth::Error),
    /// `mcp.fixtures` (`--fixtures conformance`) asks for the conformance
    /// fixtures, and this build has none: they come with the `fixtures`
    /// cargo feature.
    #[error("mcp.fixtures = \"conformance\", but this conduit was built without the fixtures feature (build it with `cargo build --features fixtures`)")]
    FixturesNotBuilt,
}

/// Starts Conduit with its built-in routes.
pub fn start(cfg: &Config) -> Result<Running, Error> {
    start_with(cfg, |_| {})
}

/// Starts Conduit with its built-in routes plus whatever `extra` adds
/// (tests and embedders use this to register their own handlers).
pub fn start_with(cfg: &Config, extra: impl FnOnce(&mut Router)) -> Result<Running, Error> {
    // The MCP server first: it may refuse (`Error::FixturesNotBuilt`)
    // before the worker pool and the demo ticker start.
    let mcp = cfg.mcp.enabled.then(|| mcp_server(cfg)).transpose()?;
    init_worker_pool(cfg.workers.threads);
    let metrics = http::Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let ml_metrics = ml::stats::Metrics::default();
    ml_metrics.register(&mut registry);
    let ready = Arc::new(AtomicBool::new(true));

    let mut router = Router::new();
    demo::routes(&mut router, &cfg.demo);
    health_and_metrics(&mut router, Arc::new(registry), ready.clone());
    let models = serve_models(cfg, ml_metrics, mcp.as_ref(), Load::Background);
    ml::kserve::routes(
        &mut router,
        models.clone(),
        &cfg.ml,
        &cfg.mcp.allowed_hosts,
        &cfg.mcp.allowed_origins,
    );
    ml::text_api::routes(&mut router, models.clone(), &cfg.ml);
    if let Some(server) = &mcp {
        mcp::transport::routes(&mut router, server.clone());
    }
    extra(&mut router);
    let guard = auth_guard(cfg, &mut router)?;

    if !cfg.server.listen.ip().is_loopback() && !cfg.auth.enabled {
        // SECURITY.md M3: a non-loopback bind is an explicit choice and should come with auth.
        tracing::warn!(listen = %cfg.server.listen, "listening on a non-loopback address without [auth]");
    }
    let service = http::Service {
        router,
        limits: cfg.http.clone(),
        metrics,
        guard,
    };
    let server = http::serve(cfg.server.clone(), service)?;
    tracing::info!(
        listen = %server.local_addr(),
        io_threads = cfg.server.resolved_io_threads(),
        "conduit listening"
    );
    Ok(Running {
        server,
        ready,
        mcp,
        models,
    })
}

/// Bearer-token auth when `[auth] enabled`: serves the RFC 9728 metadata
/// and leaves health checks and metadata public.
fn auth_guard(cfg: &Config, router: &mut Router) -> Result<Option<Arc<dyn http::Guard>>, Error> {
    router.public("/health/live").public("/health/ready");
    if !cfg.auth.enabled {
        return Ok(None);
    }
    let auth = Arc::new(crate::auth::BearerAuth::new(&cfg.auth)?);
    let doc = auth.metadata().to_string();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let doc = doc.clone();
        router
            .route(
                Method::Get,
                path,
                Mode::Inline,
                move |_: &mut Request, _: &mut Cx<'_>| {
                    Reply::Response(Response::json(200, doc.clone()))
                },
            )
            .public(path);
    }
    tracing::info!(resource = %cfg.auth.resource, "bearer-token authentication is on");
    Ok(Some(auth))
}

/// The MCP server with the built-in tools (and the conformance fixtures if
/// configured). Fails only when the fixtures are configured and this build
/// has none ([`Error::FixturesNotBuilt`]).
pub fn mcp_server(cfg: &Config) -> Result<Arc<mcp::Server>, Error> {
    let server = mcp::Server::new(cfg.mcp.clone());
    demo::tools(&server.registry);
    if cfg.mcp.fixtures.as_deref() == Some("conformance") {
        #[cfg(feature = "fixtures")]
        mcp::fixtures::conformance(&server.registry, &server);
        #[cfg(not(feature = "fixtures"))]
        return Err(Error::FixturesNotBuilt);
    }
    Ok(server)
}

/// The MCP server for `conduit stdio` (built-in tools plus the models as
/// tools) and its model repository. With `ml.eager_load` (the default) the
/// models are loaded before this returns, so the client's first
/// `tools/list` has their tools. Loading them in the background instead
/// would race the client: an agent lists tools right after `initialize`,
/// and many agents never list again, `list_changed` or not. Serving from
/// the repository's index and loading on the first call would need each
/// model's input schema before its graph is read. Waiting is bounded by
/// the loads themselves (a model that fails to load just has no tool and
/// says why in `list_models`), and nothing else is waiting: the client
/// started the process and its `initialize` is answered once serving.
/// Fails as [`mcp_server`] does.
pub fn stdio_server(cfg: &Config) -> Result<(Arc<mcp::Server>, Arc<ml::Repository>), Error> {
    let server = mcp_server(cfg)?;
    let models = serve_models(cfg, ml::stats::Metrics::default(), Some(&server), Load::Now);
    Ok((server, models))
}

/// When [`serve_models`] loads the models (with `ml.eager_load` on).
#[derive(Debug, Clone, Copy)]
enum Load {
    /// Before returning.
    Now,
    /// On a background thread: the HTTP server listens meanwhile, and each
    /// model's tools reach connected MCP clients with `list_changed`.
    Background,
}

/// The model repository, its models as tools of `mcp` (if `ml.mcp_tools`),
/// and eager loading done or started (if `ml.eager_load`).
fn serve_models(
    cfg: &Config,
    metrics: ml::stats::Metrics,
    mcp: Option<&Arc<mcp::Server>>,
    load: Load,
) -> Arc<ml::Repository> {
    let models = ml::Repository::open(&cfg.ml, metrics);
    if let (Some(server), true) = (mcp, cfg.ml.mcp_tools) {
        ml::tools::register(&models, server);
    }
    if cfg.ml.eager_load {
        match load {
            Load::Now => models.load_all(),
            Load::Background => models.load_all_in_background(),
        }
    }
    models
}

/// The rayon pool can be configured once per process; later calls (tests
/// starting several servers) keep the first pool.
fn init_worker_pool(threads: usize) {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("conduit-worker-{i}"))
        .build_global();
}

/// `/health/live`, `/health/ready` (503 once a shutdown began) and
/// `/metrics` (every layer's families in `registry`).
fn health_and_metrics(router: &mut Router, registry: Arc<Registry>, ready: Arc<AtomicBool>) {
    router
        .route(
            Method::Get,
            "/health/live",
            Mode::Inline,
            |_: &mut Request, _: &mut Cx<'_>| Reply::Response(Response::text(200, "ok\n")),
        )
        .route(
            Method::Get,
            "/health/ready",
            Mode::Inline,
            move |_: &mut Request, _: &mut Cx<'_>| {
                if ready.load(Ordering::Acquire) {
                    Reply::Response(Response::text(200, "ready\n"))
                } else {
                    Reply::Response(Response::text(503, "shutting down\n"))
                }
            },
        )
        .route(
            Method::Get,
            "/metrics",
            Mode::Pool,
            move |_: &mut Request, _: &mut Cx<'_>| {
                let mut text = String::new();
                match prometheus_client::encoding::text::encode(&mut text, &registry) {
                    Ok(()) => Reply::Response(Response::with_body(
                        200,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        text,
                    )),
                    Err(_) => Reply::Response(Response::text(500, "metrics encoding failed\n")),
                }
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance_fixtures_are_served_only_by_a_build_with_the_fixtures_feature() {
        let mut cfg = Config::default();
        cfg.mcp.fixtures = Some("conformance".into());
        let served = mcp_server(&cfg);
        #[cfg(feature = "fixtures")]
        assert!(served.is_ok_and(|s| s.registry.snapshot().tool("test_simple_text").is_some()));
        #[cfg(not(feature = "fixtures"))]
        assert!(matches!(served, Err(Error::FixturesNotBuilt)));
        // Without them configured, every build serves the demo tools alone.
        let plain = mcp_server(&Config::default()).expect("no fixtures asked for");
        let snap = plain.registry.snapshot();
        assert!(snap.tool("echo").is_some());
        assert!(snap.tool("test_simple_text").is_none());
    }
}
