//! A parsed request, owned, with buffers that are reused across requests.

use std::cell::OnceCell;
use std::ops::Range;

/// Name and value ranges of each header field, in order.
pub(crate) type HeaderIndex = Vec<(Range<usize>, Range<usize>)>;

/// Request methods the router distinguishes; anything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Method {
    /// GET
    #[default]
    Get,
    /// HEAD (served by GET routes, without a body)
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
    /// PATCH
    Patch,
    /// Any other token; routes never match it, so it gets 405 or 404.
    Other,
}

impl Method {
    /// Maps a method token to a `Method`.
    pub fn from_token(t: &str) -> Method {
        // PERF: slice patterns compile to a length check and byte compares;
        // string patterns called memcmp (callgrind, pipeline_client.py).
        match t.as_bytes() {
            [b'G', b'E', b'T'] => Method::Get,
            [b'H', b'E', b'A', b'D'] => Method::Head,
            [b'P', b'O', b'S', b'T'] => Method::Post,
            [b'P', b'U', b'T'] => Method::Put,
            [b'D', b'E', b'L', b'E', b'T', b'E'] => Method::Delete,
            [b'O', b'P', b'T', b'I', b'O', b'N', b'S'] => Method::Options,
            [b'P', b'A', b'T', b'C', b'H'] => Method::Patch,
            _ => Method::Other,
        }
    }

    /// The canonical token.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Other => "OTHER",
        }
    }
}

/// One HTTP request: head fields as ranges into a copy of the raw head, and
/// the decoded body.
///
/// The loop reuses one `Request` per thread for requests handled inline, so
/// steady-state parsing allocates nothing; a request handed to the worker
/// pool is moved out whole.
#[derive(Debug, Default)]
pub struct Request {
    pub(crate) head: Vec<u8>,
    pub(crate) method: Method,
    pub(crate) method_range: Range<usize>,
    pub(crate) path: Range<usize>,
    pub(crate) query: Option<Range<usize>>,
    pub(crate) authority: Option<Range<usize>>,
    pub(crate) http10: bool,
    /// Indexed on first use. PERF: most inline requests (the built-in
    /// routes) never look at a header, so the ranges are not built for
    /// them (callgrind, benches/load/pipeline_client.py).
    pub(crate) headers: OnceCell<HeaderIndex>,
    pub(crate) params: Vec<(String, Range<usize>)>,
    pub(crate) body: Vec<u8>,
    pub(crate) keep_alive: bool,
    pub(crate) principal: Option<String>,
}

impl Request {
    fn slice(&self, r: &Range<usize>) -> &[u8] {
        self.head.get(r.clone()).unwrap_or_default()
    }

    /// The header ranges; a parsed head is indexed on the first call.
    fn index(&self) -> &HeaderIndex {
        self.headers
            .get_or_init(|| super::parse::index_headers(&self.head))
    }

    fn str(&self, r: &Range<usize>) -> &str {
        // Ranges that reach `str` were checked to be ASCII when the head was parsed.
        std::str::from_utf8(self.slice(r)).unwrap_or_default()
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The method token as sent (useful for `Method::Other`).
    pub fn method_str(&self) -> &str {
        self.str(&self.method_range)
    }

    /// The path of the request target, without the query, not percent-decoded.
    pub fn path(&self) -> &str {
        match self.str(&self.path) {
            // `GET http://host HTTP/1.1` (absolute-form without a path) means "/".
            "" => "/",
            p => p,
        }
    }

    /// The query string after `?`, if any, not percent-decoded.
    pub fn query(&self) -> Option<&str> {
        self.query.as_ref().map(|r| self.str(r))
    }

    /// The value of query parameter `name` (first occurrence), not percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }

    /// True for HTTP/1.0 requests.
    pub fn is_http10(&self) -> bool {
        self.http10
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.index()
            .iter()
            .find(|(n, _)| self.slice(n).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| self.slice(v))
    }

    /// The first value of header `name` as text, if it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header field in order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.index()
            .iter()
            .map(|(n, v)| (self.str(n), self.slice(v)))
    }

    /// The authority the request is for: the absolute-form target's
    /// authority if there is one (RFC 9112 §3.2.2, S18), else `Host`.
    pub fn host(&self) -> Option<&str> {
        match &self.authority {
            Some(r) => Some(self.str(r)),
            None => self.header_str("host"),
        }
    }

    /// A path parameter captured by the route pattern (`{name}`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| self.str(r))
    }

    /// The decoded request body (after chunked decoding).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out of the request, leaving it empty.
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// Who made the request, as established by the server's [`super::Guard`]
    /// (e.g. a token's `sub`); `None` when authentication is off.
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// Whether the connection stays open after this request's response.
    pub fn is_keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Builds a request directly, for tests and in-process callers.
    pub fn synthetic(
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Request {
        let mut r = Request {
            method,
            http10: false,
            keep_alive: true,
            ..Request::default()
        };
        let push = |head: &mut Vec<u8>, s: &str| {
            let start = head.len();
            head.extend_from_slice(s.as_bytes());
            start..head.len()
        };
        r.method_range = push(&mut r.head, method.as_str());
        let (p, q) = target
            .split_once('?')
            .map_or((target, None), |(p, q)| (p, Some(q)));
        r.path = push(&mut r.head, p);
        r.query = q.map(|q| push(&mut r.head, q));
        let mut index = HeaderIndex::new();
        for (n, v) in headers {
            let n = push(&mut r.head, n);
            let v = push(&mut r.head, v);
            index.push((n, v));
        }
        r.headers = OnceCell::from(index);
        r.body = body.to_vec();
        r
    }

    /// Empties the request for reuse, keeping allocations.
    pub(crate) fn clear(&mut self) {
        self.head.clear();
        self.headers = OnceCell::new();
        self.params.clear();
        self.body.clear();
        self.query = None;
        self.authority = None;
        self.principal = None;
    }
}
