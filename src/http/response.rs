//! Responses and their encoding onto the wire.

use bytes::{BufMut, Bytes, BytesMut};
use std::borrow::Cow;

/// The `Server` header every response carries.
pub const SERVER_NAME: &str = "conduit";

/// An HTTP response: status, extra headers and a fully buffered body.
///
/// `Content-Length`, `Date`, `Server` and `Connection` are added by the
/// encoder; handlers never set framing headers themselves.
#[derive(Debug, Clone)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: Option<Cow<'static, str>>,
    pub(crate) headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    pub(crate) body: Bytes,
    /// Set by [`Response::prerender`]: the encoded head up to `Date: ` and
    /// the body length it announces. Cleared by anything that changes the head.
    pub(crate) pre: Option<Prerendered>,
}

/// A head encoded once, for a response sent many times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prerendered {
    /// Status line, `Server`, `Content-Type`, handler headers,
    /// `Content-Length`, then `Date: ` (the value follows per response).
    head: &'static [u8],
    /// The status `head` says; a response whose status was changed after
    /// prerendering takes the full encoder.
    status: u16,
    /// The body length `head` announces; another body takes the full encoder.
    body_len: usize,
}

/// Equal status, headers and body; whether either is prerendered does not matter.
impl PartialEq for Response {
    fn eq(&self, other: &Response) -> bool {
        self.status == other.status
            && self.content_type == other.content_type
            && self.headers == other.headers
            && self.body == other.body
    }
}

impl Eq for Response {}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Bytes::new(),
            pre: None,
        }
    }

    /// A response with a body and its content type.
    pub fn with_body(
        status: u16,
        content_type: impl Into<Cow<'static, str>>,
        body: impl Into<Bytes>,
    ) -> Response {
        Response {
            status,
            content_type: Some(content_type.into()),
            headers: Vec::new(),
            body: body.into(),
            pre: None,
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<Bytes>) -> Response {
        Response::with_body(status, "text/plain; charset=utf-8", body)
    }

    /// An `application/json` response from already-serialized JSON.
    pub fn json(status: u16, body: impl Into<Bytes>) -> Response {
        Response::with_body(status, "application/json", body)
    }

    /// Adds a header. Names and values containing CR, LF or NUL are caught
    /// when the response is encoded and turned into a 500 (R2).
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        self.headers.push((name.into(), value.into()));
        self.pre = None;
        self
    }

    /// Encodes the head once so that sending the response is a few copies.
    /// For responses built once per process (the built-in TechEmpower
    /// routes keep theirs in a `static`): the encoded head is leaked, a few
    /// hundred bytes per call. A body of another length, HEAD, HTTP/1.0 or
    /// a closing connection take the full encoder. An invalid response is
    /// returned unchanged (it becomes a 500 when encoded).
    pub(crate) fn prerender(mut self) -> Response {
        if !self.is_valid() || is_bodiless(self.status) {
            return self;
        }
        self.pre = Some(Prerendered {
            head: Box::leak(self.head_until_date().into_boxed_slice()),
            status: self.status,
            body_len: self.body.len(),
        });
        self
    }

    /// Takes `other`'s prerendered head if `other` has the same status and
    /// headers (a body of another length still takes the full encoder):
    /// for a response built per request whose head never changes, e.g.
    /// TechEmpower's `/json`, serialized anew each time.
    pub(crate) fn with_head_of(mut self, other: &Response) -> Response {
        if self.status == other.status
            && self.content_type == other.content_type
            && self.headers == other.headers
        {
            self.pre = other.pre;
        }
        self
    }

    /// What [`Response::prerender`] keeps: the head of a valid, bodied
    /// response up to and including `Date: `.
    fn head_until_date(&self) -> Vec<u8> {
        let mut out = BytesMut::new();
        put_status_line(self.status, &mut out);
        put_headers(self, &mut out);
        put_content_length(self.body.len(), &mut out);
        out.extend_from_slice(b"Date: ");
        out.to_vec()
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The first value of a header set by the handler (case-insensitive).
    pub fn get_header(&self, name: &str) -> Option<&str> {
        if name.eq_ignore_ascii_case("content-type") {
            return self.content_type.as_deref();
        }
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    fn is_valid(&self) -> bool {
        // PERF: short values (most) are cheapest byte by byte; long ones with
        // memchr3's SIMD scan (callgrind, benches/parse.rs encode_*).
        let bad = |s: &str| {
            let b = s.as_bytes();
            if b.len() < 32 {
                b.iter().any(|&c| c == b'\r' || c == b'\n' || c == 0)
            } else {
                memchr::memchr3(b'\r', b'\n', 0, b).is_some()
            }
        };
        let bad_name =
            |s: &str| s.is_empty() || bad(s) || s.bytes().any(|b| b == b':' || b == b' ');
        (100..=999).contains(&self.status)
            && !self.content_type.as_deref().is_some_and(bad)
            && !self
                .headers
                .iter()
                .any(|(n, v)| bad_name(n) || bad(v) || is_framing_header(n))
    }
}

fn is_framing_header(name: &str) -> bool {
    [
        "content-length",
        "transfer-encoding",
        "connection",
        "date",
        "server",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// The reason phrase for a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// How a response is framed on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// The request was HEAD: send headers only (R1).
    pub head_only: bool,
    /// The connection stays open after this response; if false the response
    /// says `Connection: close` (R4).
    pub keep_alive: bool,
    /// The request was HTTP/1.0: a kept-alive connection must say so.
    pub http10: bool,
}

fn put_status_line(status: u16, out: &mut BytesMut) {
    // PERF: pre-rendered heads for the common statuses (benches/parse.rs encode_*).
    let pre: &[u8] = match status {
        200 => b"HTTP/1.1 200 OK\r\nServer: conduit\r\n",
        202 => b"HTTP/1.1 202 Accepted\r\nServer: conduit\r\n",
        204 => b"HTTP/1.1 204 No Content\r\nServer: conduit\r\n",
        404 => b"HTTP/1.1 404 Not Found\r\nServer: conduit\r\n",
        _ => b"",
    };
    if !pre.is_empty() {
        out.extend_from_slice(pre);
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(status).as_bytes());
    out.put_u8(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(SERVER_NAME.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn put_common(date: &[u8; 29], f: Framing, out: &mut BytesMut) {
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    if !f.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if f.http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
}

fn put_headers(resp: &Response, out: &mut BytesMut) {
    if let Some(ct) = &resp.content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(ct.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (n, v) in &resp.headers {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// R1: 1xx, 204 and 304 responses carry neither `Content-Length` nor a body.
fn is_bodiless(status: u16) -> bool {
    status < 200 || status == 204 || status == 304
}

fn put_content_length(len: usize, out: &mut BytesMut) {
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `resp` to `out`. A response whose handler-set headers are invalid
/// is replaced by a 500 (R2); returns false in that case so it can be logged.
// PERF: inlined, so a prerendered response costs no call; the full
// encoder stays out of line (callgrind, benches/load/pipeline_client.py).
#[inline(always)]
pub fn encode(resp: &Response, f: Framing, date: &[u8; 29], out: &mut BytesMut) -> bool {
    if let Some(pre) = resp.pre {
        // PERF: four copies instead of the field-by-field encoding and its
        // validation (callgrind, benches/load/pipeline_client.py --wrk-heads).
        if pre.body_len == resp.body.len()
            && pre.status == resp.status
            && f.keep_alive
            && !f.http10
            && !f.head_only
        {
            // Headers and content type are changed only through `header()`,
            // which drops the prerendered head; tests check that nothing
            // else does.
            debug_assert_eq!(pre.head, resp.head_until_date().as_slice());
            out.reserve(pre.head.len() + date.len() + 4 + resp.body.len());
            out.extend_from_slice(pre.head);
            out.extend_from_slice(date);
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(&resp.body);
            return true;
        }
    }
    encode_fields(resp, f, date, out)
}

/// [`encode`] field by field.
#[inline(never)]
fn encode_fields(resp: &Response, f: Framing, date: &[u8; 29], out: &mut BytesMut) -> bool {
    if !resp.is_valid() {
        let fallback = Response::text(500, "internal error: handler produced an invalid header\n");
        encode(&fallback, f, date, out);
        return false;
    }
    // The order of a prerendered head (`Date` after the fields), so a
    // response reads the same whichever encoder wrote it (GET and HEAD).
    put_status_line(resp.status, out);
    put_headers(resp, out);
    let bodiless = is_bodiless(resp.status);
    if !bodiless {
        put_content_length(resp.body.len(), out);
    }
    put_common(date, f, out);
    out.extend_from_slice(b"\r\n");
    if !bodiless && !f.head_only {
        out.extend_from_slice(&resp.body);
    }
    true
}

/// Appends the head of an SSE response. On HTTP/1.1 the stream is chunked so
/// the connection can be reused when the stream ends; on HTTP/1.0 it is
/// delimited by close. Returns whether chunked framing is used.
pub fn encode_stream_head(
    resp: &Response,
    f: Framing,
    date: &[u8; 29],
    out: &mut BytesMut,
) -> bool {
    let valid = resp.is_valid();
    put_status_line(if valid { resp.status } else { 500 }, out);
    let chunked = !f.http10;
    put_common(
        date,
        Framing {
            keep_alive: f.keep_alive && chunked,
            ..f
        },
        out,
    );
    if valid {
        put_headers(resp, out);
    }
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
    chunked
}

/// Appends one chunk of a chunked body (nothing for an empty payload, which
/// would end the body).
pub fn encode_chunk(payload: &[u8], out: &mut BytesMut) {
    if payload.is_empty() {
        return;
    }
    // PERF: hex size on the stack; this runs once per SSE event.
    let mut size = [0u8; 18];
    let mut i = 16;
    let mut n = payload.len();
    loop {
        i -= 1;
        size[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    size[16] = b'\r';
    size[17] = b'\n';
    out.extend_from_slice(&size[i..]);
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk that ends a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The interim response sent for `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; 29] = b"Sun, 06 Nov 1994 08:49:37 GMT";
    const KA: Framing = Framing {
        head_only: false,
        keep_alive: true,
        http10: false,
    };

    fn enc(r: &Response, f: Framing) -> String {
        let mut out = BytesMut::new();
        encode(r, f, DATE, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn plain_response_has_length_date_server() {
        let s = enc(&Response::text(200, "hi"), KA);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nServer: conduit\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nhi"
        );
    }

    #[test]
    fn head_gets_length_but_no_body() {
        let s = enc(
            &Response::text(200, "hello"),
            Framing {
                head_only: true,
                ..KA
            },
        );
        assert!(s.contains("\r\nContent-Length: 5\r\n"), "{s}");
        assert!(s.ends_with(" GMT\r\n\r\n"), "no body after the head: {s}");
    }

    #[test]
    fn no_content_and_not_modified_have_no_length_or_body() {
        for st in [204, 304, 101] {
            let s = enc(&Response::with_body(st, "text/plain", "x"), KA);
            assert!(!s.contains("Content-Length"), "{s}");
            assert!(s.ends_with("\r\n\r\n"), "{s}");
        }
    }

    #[test]
    fn closing_response_says_connection_close() {
        let s = enc(
            &Response::new(200),
            Framing {
                keep_alive: false,
                ..KA
            },
        );
        assert!(s.contains("Connection: close\r\n"));
        let s = enc(&Response::new(200), Framing { http10: true, ..KA });
        assert!(s.contains("Connection: keep-alive\r\n"));
    }

    #[test]
    fn header_injection_becomes_500() {
        for r in [
            Response::new(200).header("X-A", "a\r\nSet-Cookie: x"),
            Response::new(200).header("X-A\n", "a"),
            Response::new(200).header("X-A", "a\0"),
            Response::new(200).header("Content-Length", "5"),
        ] {
            let mut out = BytesMut::new();
            assert!(!encode(&r, KA, DATE, &mut out));
            assert!(out.starts_with(b"HTTP/1.1 500 "));
        }
    }

    /// The head's lines in order, with the Date line moved last, and the body.
    fn lines(s: &str) -> (Vec<String>, String) {
        let (head, body) = s.split_once("\r\n\r\n").unwrap();
        let mut v: Vec<String> = head.split("\r\n").map(str::to_string).collect();
        v.sort_by_key(|l| l.starts_with("Date: "));
        (v, body.to_string())
    }

    #[test]
    fn prerendered_responses_encode_like_the_full_encoder() {
        let build = || {
            Response::with_body(200, "text/plain", Bytes::from_static(b"Hello, World!"))
                .header("X-A", "b")
        };
        let pre = build().prerender();
        assert!(pre.pre.is_some());
        let head_only = Framing {
            head_only: true,
            ..KA
        };
        let close = Framing {
            keep_alive: false,
            ..KA
        };
        let http10 = Framing { http10: true, ..KA };
        for f in [KA, head_only, close, http10] {
            assert_eq!(lines(&enc(&pre, f)), lines(&enc(&build(), f)), "{f:?}");
        }
        // Byte for byte, not only the same lines: GET and HEAD read alike.
        assert_eq!(enc(&pre, KA), enc(&build(), KA));
        // Another body (of another length) and a later header are never sent with the stale head.
        let mut other = pre.clone();
        other.body = Bytes::from_static(b"a longer body than before");
        let mut plain = build();
        plain.body = other.body.clone();
        assert_eq!(lines(&enc(&other, KA)), lines(&enc(&plain, KA)));
        let mut other_status = pre.clone();
        other_status.status = 201;
        let mut plain = build();
        plain.status = 201;
        assert_eq!(lines(&enc(&other_status, KA)), lines(&enc(&plain, KA)));
        assert_eq!(other_status, plain, "equality ignores the prerendered head");
        let more = pre.clone().header("X-B", "c");
        assert_eq!(more.pre, None);
        assert_eq!(
            lines(&enc(&more, KA)),
            lines(&enc(&build().header("X-B", "c"), KA))
        );
        // An invalid response is not prerendered and still becomes a 500.
        let bad = Response::new(200).header("X-A", "a\r\nb").prerender();
        assert_eq!(bad.pre, None);
        assert!(enc(&bad, KA).starts_with("HTTP/1.1 500 "));
    }

    #[test]
    fn a_head_is_borrowed_only_by_a_response_with_the_same_head() {
        let model = Response::json(200, "{\"a\":1}").prerender();
        let same = Response::json(200, "{\"a\":2}").with_head_of(&model);
        assert!(same.pre.is_some());
        assert_eq!(
            lines(&enc(&same, KA)),
            lines(&enc(&Response::json(200, "{\"a\":2}"), KA))
        );
        for other in [
            Response::json(201, "{\"a\":2}"),
            Response::text(200, "{\"a\":2}"),
            Response::json(200, "{\"a\":2}").header("X-A", "b"),
        ] {
            assert_eq!(other.clone().with_head_of(&model).pre, None, "{other:?}");
        }
        // Same head, body of another length: the full encoder.
        let longer = Response::json(200, "{\"a\":22}").with_head_of(&model);
        assert_eq!(
            lines(&enc(&longer, KA)),
            lines(&enc(&Response::json(200, "{\"a\":22}"), KA))
        );
    }

    #[test]
    fn chunks_are_hex_sized() {
        let mut out = BytesMut::new();
        encode_chunk(&[b'a'; 26], &mut out);
        assert_eq!(&out[..], b"1a\r\naaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
}
