//! Method + path (+ `{param}` segments) → handler.

use super::framing::bytes_eq;
use super::handler::{Cx, Handler, Mode, Reply};
use super::request::{Method, Request};
use super::response::Response;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Param(String),
}

/// One registered route.
pub struct Route {
    pub(crate) method: Method,
    pub(crate) pattern: String,
    /// The pattern as a metrics label; leaked once per registration, since
    /// routes live as long as the server.
    pub(crate) label: &'static str,
    segs: Vec<Seg>,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) mode: Mode,
    pub(crate) max_body_bytes: Option<u64>,
    /// Served without authentication (health checks, auth metadata).
    pub(crate) public: bool,
    /// Builds the body of errors the connection layer answers for this
    /// route (413, 408, bad chunked framing), if not plain text (see
    /// [`Router::error_bodies`]).
    pub(crate) error_body: Option<ErrorBody>,
    /// Position in the router, used as the metrics label index.
    pub(crate) index: usize,
    /// The response of a route registered with [`Router::fixed`].
    pub(crate) fixed: Option<&'static Response>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("pattern", &self.pattern)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Route {
    /// The pattern the route was registered with, e.g. `/v2/models/{name}`.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    fn matches(&self, path: &str, params: &mut Vec<(String, std::ops::Range<usize>)>) -> bool {
        params.clear();
        let mut rest = path.strip_prefix('/').unwrap_or(path);
        let mut offset = path.len() - rest.len();
        for (i, seg) in self.segs.iter().enumerate() {
            let (part, tail) = rest
                .split_once('/')
                .map_or((rest, None), |(a, b)| (a, Some(b)));
            match seg {
                Seg::Lit(l) if l == part => {}
                Seg::Lit(_) => return false,
                Seg::Param(_) if part.is_empty() => return false,
                Seg::Param(name) => params.push((name.clone(), offset..offset + part.len())),
            }
            match tail {
                Some(t) => {
                    if i + 1 == self.segs.len() {
                        return false;
                    }
                    offset += part.len() + 1;
                    rest = t;
                }
                None => return i + 1 == self.segs.len(),
            }
        }
        self.segs.is_empty() && rest.is_empty()
    }
}

/// Builds the response for an error the connection layer answers itself
/// (413, 408, bad chunked framing) from its status and a short reason. The
/// status must be kept; the connection closes after it.
pub type ErrorBody = fn(status: u16, reason: &str) -> Response;

/// `{"error": "<reason>"}` (KServe v2 and other JSON APIs).
pub fn json_error_body(status: u16, reason: &str) -> Response {
    Response::json(status, serde_json::json!({ "error": reason }).to_string())
}

/// A static path and the routes (one per method) registered for it.
type ExactPath = (Box<[u8]>, Vec<usize>);

/// What routing a request found.
#[derive(Debug)]
pub enum Match<'r> {
    /// A route; its params were written to the request.
    Found(&'r Route),
    /// No route has this path.
    NotFound,
    /// Routes have this path, but not for this method; the `Allow` value.
    MethodNotAllowed(String),
}

/// Routes requests by method and path.
///
/// Static paths are looked up in a hash map; patterns with `{param}`
/// segments are tried in registration order. A `GET` route also answers
/// `HEAD` (headers only).
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
    /// Static paths by length, each with its route indices. PERF: a length
    /// index and a word-wise compare instead of hashing the path and a
    /// memcmp call (callgrind, benches/load/pipeline_client.py: `find` was
    /// ~140 instructions per request, the memcmp ~20 of them; measured
    /// together with the target split).
    exact: Vec<Vec<ExactPath>>,
    patterned: Vec<usize>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Router {
        Router::default()
    }

    /// Registers `handler` for `method` and `pattern` (`/a/{x}/b`), run in `mode`.
    /// Returns the route's index; a later registration of the same method and
    /// pattern replaces the earlier one.
    pub fn route(
        &mut self,
        method: Method,
        pattern: &str,
        mode: Mode,
        handler: impl Handler,
    ) -> &mut Router {
        self.add(method, pattern, mode, Arc::new(handler), None)
    }

    /// Like [`Router::route`], with a body cap for this route instead of the
    /// global `max_body_bytes` (e.g. 64 MiB for inference).
    pub fn route_with_limit(
        &mut self,
        method: Method,
        pattern: &str,
        mode: Mode,
        max_body_bytes: u64,
        handler: impl Handler,
    ) -> &mut Router {
        self.add(
            method,
            pattern,
            mode,
            Arc::new(handler),
            Some(max_body_bytes),
        )
    }

    /// Registers a route whose answer is always `resp` (a health check,
    /// TechEmpower's `/plaintext`). Its head is encoded once, with the
    /// `Date` filled in per response; the connection layer writes it
    /// without building a [`Request`] or calling a handler when the route
    /// needs no authentication and the request has no body. The response
    /// lives as long as the process, like the route.
    pub fn fixed(&mut self, method: Method, pattern: &str, resp: Response) -> &mut Router {
        let resp: &'static Response = Box::leak(Box::new(resp.prerender()));
        self.add(
            method,
            pattern,
            Mode::Inline,
            Arc::new(move |_: &mut Request, _: &mut Cx<'_>| Reply::Static(resp)),
            None,
        );
        // `add` puts the new route last.
        if let Some(r) = self.routes.last_mut() {
            r.fixed = Some(resp);
        }
        self
    }

    /// Registers an already shared handler.
    pub fn add(
        &mut self,
        method: Method,
        pattern: &str,
        mode: Mode,
        handler: Arc<dyn Handler>,
        max_body_bytes: Option<u64>,
    ) -> &mut Router {
        let segs: Vec<Seg> = pattern
            .trim_start_matches('/')
            .split('/')
            .filter(|s| !s.is_empty() || pattern == "/")
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Seg::Param(name.to_string()),
                    None => Seg::Lit(s.to_string()),
                },
            )
            .collect();
        let segs = if pattern == "/" { Vec::new() } else { segs };
        if let Some(i) = self
            .routes
            .iter()
            .position(|r| r.method == method && r.pattern == pattern)
        {
            self.routes.remove(i);
            self.rebuild();
        }
        let index = self.routes.len();
        let label: &'static str = Box::leak(pattern.to_string().into_boxed_str());
        self.routes.push(Route {
            public: false,
            error_body: None,
            method,
            pattern: pattern.to_string(),
            label,
            segs,
            handler,
            mode,
            max_body_bytes,
            index,
            fixed: None,
        });
        self.rebuild();
        self
    }

    fn rebuild(&mut self) {
        self.exact.clear();
        self.patterned.clear();
        for (i, r) in self.routes.iter_mut().enumerate() {
            r.index = i;
            if r.segs.iter().any(|s| matches!(s, Seg::Param(_))) {
                self.patterned.push(i);
            } else {
                let len = r.pattern.len();
                if self.exact.len() <= len {
                    self.exact.resize_with(len + 1, Vec::new);
                }
                if let Some(bucket) = self.exact.get_mut(len) {
                    match bucket
                        .iter_mut()
                        .find(|(p, _)| **p == *r.pattern.as_bytes())
                    {
                        Some((_, ids)) => ids.push(i),
                        None => bucket.push((r.pattern.as_bytes().into(), vec![i])),
                    }
                }
            }
        }
    }

    /// Marks the routes with `pattern` (every method) as public: a
    /// [`super::Guard`] never checks them.
    pub fn public(&mut self, pattern: &str) -> &mut Router {
        for r in self.routes.iter_mut().filter(|r| r.pattern == pattern) {
            r.public = true;
        }
        self
    }

    /// Makes the connection layer's errors for routes whose pattern starts
    /// with `prefix` JSON `{"error": "..."}` instead of text (APIs whose
    /// clients parse every error body, like KServe v2's).
    pub fn json_errors(&mut self, prefix: &str) -> &mut Router {
        self.error_bodies(prefix, json_error_body)
    }

    /// Has `body` build the connection layer's errors (413, 408, bad
    /// chunked framing) for routes whose pattern starts with `prefix`, for
    /// APIs whose clients expect their own error shape. Routes registered
    /// later are not affected.
    pub fn error_bodies(&mut self, prefix: &str, body: ErrorBody) -> &mut Router {
        for r in self
            .routes
            .iter_mut()
            .filter(|r| r.pattern.starts_with(prefix))
        {
            r.error_body = Some(body);
        }
        self
    }

    /// All routes, in registration order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Finds the route for `method` and `path`, writing path params into `params`.
    pub fn find<'r>(
        &'r self,
        method: Method,
        path: &str,
        params: &mut Vec<(String, std::ops::Range<usize>)>,
    ) -> Match<'r> {
        let want =
            |r: &Route| r.method == method || (method == Method::Head && r.method == Method::Get);
        let mut allowed: Vec<Method> = Vec::new();
        let ids = self.exact.get(path.len()).and_then(|bucket| {
            bucket
                .iter()
                .find(|(p, _)| bytes_eq(p, path.as_bytes()))
                .map(|(_, ids)| ids)
        });
        if let Some(ids) = ids {
            params.clear();
            for &i in ids {
                let Some(r) = self.routes.get(i) else {
                    continue;
                };
                if want(r) {
                    return Match::Found(r);
                }
                allowed.push(r.method);
            }
        }
        for &i in &self.patterned {
            let Some(r) = self.routes.get(i) else {
                continue;
            };
            if r.matches(path, params) {
                if want(r) {
                    return Match::Found(r);
                }
                allowed.push(r.method);
            }
        }
        params.clear();
        if allowed.is_empty() {
            return Match::NotFound;
        }
        if allowed.contains(&Method::Get) && !allowed.contains(&Method::Head) {
            allowed.push(Method::Head);
        }
        allowed.sort_by_key(|m| *m as u8);
        allowed.dedup();
        Match::MethodNotAllowed(
            allowed
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Reply, Response};

    fn router() -> Router {
        let mut r = Router::new();
        let h = |_: &mut crate::http::Request, _: &mut crate::http::Cx<'_>| {
            Reply::Response(Response::new(200))
        };
        r.route(Method::Get, "/", Mode::Inline, h)
            .route(Method::Get, "/json", Mode::Inline, h)
            .route(Method::Post, "/json", Mode::Inline, h)
            .route(Method::Get, "/v2/models/{name}", Mode::Inline, h)
            .route(
                Method::Post,
                "/v2/models/{name}/versions/{v}/infer",
                Mode::Pool,
                h,
            );
        r
    }

    fn find(r: &Router, m: Method, p: &str) -> (String, Vec<(String, String)>) {
        let mut params = Vec::new();
        match r.find(m, p, &mut params) {
            Match::Found(route) => (
                route.pattern.clone(),
                params
                    .iter()
                    .map(|(n, rg)| (n.clone(), p[rg.clone()].to_string()))
                    .collect(),
            ),
            Match::NotFound => ("404".into(), vec![]),
            Match::MethodNotAllowed(a) => (format!("405 {a}"), vec![]),
        }
    }

    #[test]
    fn a_fixed_route_keeps_its_response_and_a_handler_for_the_general_path() {
        let mut r = router();
        r.fixed(Method::Get, "/ping", Response::text(200, "pong\n"));
        let mut params = Vec::new();
        let Match::Found(route) = r.find(Method::Get, "/ping", &mut params) else {
            panic!("no route");
        };
        let fixed = route.fixed.expect("fixed");
        assert_eq!(fixed, &Response::text(200, "pong\n"));
        // Registering the pattern again replaces it with an ordinary route.
        r.route(
            Method::Get,
            "/ping",
            Mode::Inline,
            |_: &mut Request, _: &mut Cx<'_>| Reply::Response(Response::new(204)),
        );
        let Match::Found(route) = r.find(Method::Get, "/ping", &mut params) else {
            panic!("no route");
        };
        assert!(route.fixed.is_none());
    }

    #[test]
    fn error_bodies_apply_to_routes_under_their_prefix_only() {
        fn custom(status: u16, reason: &str) -> Response {
            Response::text(status, format!("custom: {reason}"))
        }
        let mut r = router();
        r.json_errors("/v2").error_bodies("/json", custom);
        let body_of = |path: &str| {
            let mut params = Vec::new();
            let Match::Found(route) = r.find(Method::Get, path, &mut params) else {
                panic!("no route {path}");
            };
            route.error_body.map(|f| f(413, "too large"))
        };
        assert_eq!(body_of("/json"), Some(custom(413, "too large")));
        assert_eq!(
            body_of("/v2/models/mlp"),
            Some(Response::json(413, r#"{"error":"too large"}"#))
        );
        assert_eq!(body_of("/"), None);
    }

    #[test]
    fn static_and_param_routes_match() {
        let r = router();
        assert_eq!(find(&r, Method::Get, "/json").0, "/json");
        assert_eq!(find(&r, Method::Get, "/").0, "/");
        let (p, params) = find(&r, Method::Post, "/v2/models/mlp/versions/3/infer");
        assert_eq!(p, "/v2/models/{name}/versions/{v}/infer");
        assert_eq!(
            params,
            vec![("name".into(), "mlp".into()), ("v".into(), "3".into())]
        );
        assert_eq!(
            find(&r, Method::Get, "/v2/models/mlp").1,
            vec![("name".into(), "mlp".into())]
        );
    }

    #[test]
    fn unknown_path_is_404_and_wrong_method_is_405_with_allow() {
        let r = router();
        assert_eq!(find(&r, Method::Get, "/nope").0, "404");
        assert_eq!(find(&r, Method::Get, "/v2/models/").0, "404");
        assert_eq!(find(&r, Method::Get, "/v2/models/a/b").0, "404");
        assert_eq!(find(&r, Method::Delete, "/json").0, "405 GET, HEAD, POST");
        assert_eq!(
            find(&r, Method::Get, "/v2/models/x/versions/1/infer").0,
            "405 POST"
        );
    }

    #[test]
    fn head_is_served_by_get_routes() {
        let r = router();
        assert_eq!(find(&r, Method::Head, "/json").0, "/json");
    }
}
