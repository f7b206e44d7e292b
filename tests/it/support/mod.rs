//! Helpers shared by the integration tests: a real server on an ephemeral
//! loopback port, raw socket exchanges with timeouts, SSE reading.

#![allow(dead_code)]

use conduit::app::{self, Running};
use conduit::config::Config;
use conduit::http::Router;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every socket read in tests gives up after this long.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A server for one test; shut down and joined on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    running: Option<Running>,
}

impl TestServer {
    pub fn shutdown(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
            r.join();
        }
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("server is running")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A config for tests: loopback ephemeral port, one I/O thread, short drain.
pub fn test_config() -> Config {
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    cfg.server.io_threads = 1;
    cfg.workers.threads = 2;
    cfg.http.drain_timeout = Duration::from_secs(5);
    cfg
}

pub fn spawn_server(cfg: Config) -> TestServer {
    spawn_server_with(cfg, |_| {})
}

pub fn spawn_server_with(cfg: Config, routes: impl FnOnce(&mut Router)) -> TestServer {
    let running = app::start_with(&cfg, routes).expect("server starts");
    TestServer {
        addr: running.local_addr(),
        running: Some(running),
    }
}

/// Polls `f` every 20 ms until it gives a value; panics with `what` (and
/// the last state `f` reported) after `limit`.
pub fn wait_for<T, S: std::fmt::Debug>(
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> Result<T, S>,
) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(state) => assert!(start.elapsed() < limit, "{what}: {state:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads responses from a stream, keeping bytes that belong to the next one.
pub struct Reader {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    pub fn new(stream: TcpStream) -> Reader {
        Reader {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!(
                "read failed (timeout?): {e}; have {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Reads one response to a request with method `method` (HEAD has no body).
    pub fn response_to(&mut self, method: &str) -> RawResponse {
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if self.fill() == 0 {
                panic!(
                    "connection closed before a full head: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).expect("ascii head");
        self.buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let mut r = RawResponse {
            status,
            head,
            headers,
            body: Vec::new(),
        };
        if status == 100 {
            return r;
        }
        let bodiless = method == "HEAD" || status == 204 || status == 304 || status < 200;
        if bodiless {
            return r;
        }
        if let Some(len) = r.header("content-length") {
            let len: usize = len.parse().unwrap();
            while self.buf.len() < len {
                if self.fill() == 0 {
                    panic!("closed mid-body");
                }
            }
            r.body = self.buf.drain(..len).collect();
        } else if r.header("transfer-encoding").is_some() {
            panic!("chunked response bodies: use read_chunked");
        } else {
            while self.fill() > 0 {}
            r.body = std::mem::take(&mut self.buf);
        }
        r
    }

    pub fn response(&mut self) -> RawResponse {
        self.response_to("GET")
    }

    /// True if the server closes the connection (EOF or reset) within the read timeout,
    /// discarding anything else it sends.
    pub fn closed(&mut self) -> bool {
        let start = Instant::now();
        loop {
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
            if start.elapsed() > READ_TIMEOUT {
                return false;
            }
        }
    }

    /// Bytes received but not yet consumed.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }

    /// Reads until `pat` appears; returns everything up to and including it.
    pub fn read_until(&mut self, pat: &[u8]) -> Vec<u8> {
        loop {
            if let Some(p) = self.buf.windows(pat.len()).position(|w| w == pat) {
                return self.buf.drain(..p + pat.len()).collect();
            }
            if self.fill() == 0 {
                panic!(
                    "closed before {:?}; have {:?}",
                    String::from_utf8_lossy(pat),
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    /// Reads one chunk of a chunked body; `None` at the last chunk.
    pub fn read_chunk(&mut self) -> Option<Vec<u8>> {
        let line = self.read_until(b"\r\n");
        let size = usize::from_str_radix(
            std::str::from_utf8(&line[..line.len() - 2]).unwrap().trim(),
            16,
        )
        .unwrap();
        if size == 0 {
            self.read_until(b"\r\n");
            return None;
        }
        while self.buf.len() < size + 2 {
            if self.fill() == 0 {
                panic!("closed mid-chunk");
            }
        }
        let data: Vec<u8> = self.buf.drain(..size).collect();
        self.buf.drain(..2);
        Some(data)
    }
}

/// Sends `bytes` on a fresh connection and reads one response.
pub fn exchange(addr: SocketAddr, bytes: &[u8]) -> (RawResponse, Reader) {
    let mut r = Reader::new(connect(addr));
    r.send(bytes);
    let resp = r.response();
    (resp, r)
}

/// A plain GET request.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

// ---------------------------------------------------------------------------
// Helpers for the limit and smuggling tests (http_limits.rs, smuggling.rs).

use conduit::http::{Cx, Method, Mode, Reply, Request, Response};

/// The exact status line the server sends for `status`.
pub fn status_line(status: u16) -> String {
    format!(
        "HTTP/1.1 {status} {}",
        conduit::http::response::reason(status)
    )
}

impl RawResponse {
    /// The first line of the head, without CRLF.
    pub fn status_line(&self) -> &str {
        self.head.split("\r\n").next().unwrap_or_default()
    }
}

impl Reader {
    /// Writes `bytes`, ignoring errors (the server may already have closed).
    pub fn send_lossy(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Waits up to `d` for bytes or EOF. True if anything arrived (bytes are
    /// kept for `response`), false if the wait timed out.
    pub fn poll_for(&mut self, d: Duration) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        self.stream.set_read_timeout(Some(d)).unwrap();
        let mut chunk = [0u8; 16384];
        let got = match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                false
            }
            Err(_) => true,
        };
        self.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        got
    }

    /// Reads until EOF (or reset) and returns every byte received, including
    /// any not yet consumed. Panics if the connection stays open past the
    /// read timeout.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut chunk = [0u8; 16384];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!(
                    "connection still open (read: {e}); have {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// Reads one response and asserts it is the error `status`, says
    /// `Connection: close`, and that the server then closes (SECURITY.md §2, R4).
    #[track_caller]
    pub fn expect_error_close(&mut self, status: u16, what: &str) -> RawResponse {
        let resp = self.response();
        assert_eq!(
            resp.status_line(),
            status_line(status),
            "{what}: {:?}",
            resp.head
        );
        assert!(
            resp.closes(),
            "{what}: error response must say Connection: close: {:?}",
            resp.head
        );
        assert!(
            resp.header("transfer-encoding").is_none(),
            "{what}: {:?}",
            resp.head
        );
        assert!(self.closed(), "{what}: server must close after {status}");
        resp
    }
}

/// Sends `raw` on a fresh connection and asserts the server answers exactly
/// `status` with `Connection: close` and then closes.
#[track_caller]
pub fn assert_rejected(addr: SocketAddr, raw: &[u8], status: u16) -> RawResponse {
    let mut r = Reader::new(connect(addr));
    r.send_lossy(raw);
    r.expect_error_close(status, &format!("{:?}", String::from_utf8_lossy(raw)))
}

/// Sends `raw` on a fresh connection and returns the response, asserting the
/// connection stays usable: a `GET /seq?n=99` sent afterwards is answered.
#[track_caller]
pub fn assert_accepted(addr: SocketAddr, raw: &[u8]) -> RawResponse {
    let what = format!("{:?}", String::from_utf8_lossy(raw));
    let mut r = Reader::new(connect(addr));
    r.send(raw);
    let resp = r.response();
    assert!(!resp.closes(), "{what}: unexpected close: {:?}", resp.head);
    r.send(&get("/seq?n=99"));
    let next = r.response();
    assert_eq!(
        next.status, 200,
        "{what}: follow-up request: {:?}",
        next.head
    );
    assert_eq!(
        next.body_str(),
        "99",
        "{what}: follow-up request answered out of frame"
    );
    resp
}

/// A POST with a chunked body made of `chunked` (size lines, data, trailers).
pub fn post_chunked(path: &str, chunked: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}"
    )
    .into_bytes()
}

/// A POST with a `Content-Length` body.
pub fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

/// Test routes used by the limit and smuggling tests:
/// - `POST /echo`: the request body back;
/// - `GET /seq?n=N`: `N` back (for ordering checks);
/// - `GET /host`: `req.host()` back (or `(none)`);
/// - `GET|POST /header?name=X`: the value of request header `X`, or `(absent)`;
/// - `GET /param/{a}/{b}`: the path params, as `a=<a> b=<b>`;
/// - `GET /nocontent`: 204;
/// - `GET /bad-header?kind=cr|lf|nul|name`: a handler header that must be refused (R2);
/// - `GET /big?bytes=N`: N bytes of `x`.
pub fn test_routes(r: &mut conduit::http::Router) {
    r.route(
        Method::Post,
        "/echo",
        Mode::Inline,
        |req: &mut Request, _: &mut Cx<'_>| Reply::Response(Response::text(200, req.take_body())),
    )
    .route(
        Method::Get,
        "/seq",
        Mode::Inline,
        |req: &mut Request, _: &mut Cx<'_>| {
            Reply::Response(Response::text(
                200,
                req.query_param("n").unwrap_or_default().to_string(),
            ))
        },
    )
    .route(
        Method::Get,
        "/host",
        Mode::Inline,
        |req: &mut Request, _: &mut Cx<'_>| {
            Reply::Response(Response::text(
                200,
                req.host().unwrap_or("(none)").to_string(),
            ))
        },
    )
    .route(
        Method::Get,
        "/nocontent",
        Mode::Inline,
        |_: &mut Request, _: &mut Cx<'_>| Reply::Response(Response::new(204)),
    )
    .route(
        Method::Get,
        "/bad-header",
        Mode::Inline,
        |req: &mut Request, _: &mut Cx<'_>| {
            let resp = Response::text(200, "should not be sent\n");
            Reply::Response(match req.query_param("kind") {
                Some("cr") => resp.header("X-Bad", "a\rInjected: 1"),
                Some("lf") => resp.header("X-Bad", "a\nInjected: 1"),
                Some("nul") => resp.header("X-Bad", "a\0b"),
                Some("name") => resp.header("X-Bad\r\nInjected", "1"),
                _ => resp,
            })
        },
    )
    .route(
        Method::Get,
        "/big",
        Mode::Inline,
        |req: &mut Request, _: &mut Cx<'_>| {
            let n: usize = req
                .query_param("bytes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1 << 20);
            Reply::Response(Response::text(200, vec![b'x'; n]))
        },
    )
    .route(
        Method::Get,
        "/param/{a}/{b}",
        Mode::Inline,
        |req: &mut Request, _: &mut Cx<'_>| {
            let body = format!(
                "a={} b={}",
                req.param("a").unwrap_or("?"),
                req.param("b").unwrap_or("?")
            );
            Reply::Response(Response::text(200, body))
        },
    );
    for method in [Method::Get, Method::Post] {
        r.route(
            method,
            "/header",
            Mode::Inline,
            |req: &mut Request, _: &mut Cx<'_>| {
                let name = req.query_param("name").unwrap_or_default().to_string();
                let v = req.header_str(&name).unwrap_or("(absent)").to_string();
                Reply::Response(Response::text(200, v))
            },
        );
    }
}

/// A server with the default test config plus [`test_routes`].
pub fn spawn_test_server(cfg: Config) -> TestServer {
    spawn_server_with(cfg, test_routes)
}

/// Raises this process's open-file soft limit to at least `want` (up to the
/// hard limit), for tests that open many sockets.
pub fn raise_fd_limit(want: libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers for the MCP tests (mcp_http.rs, mcp_stdio.rs).

/// A request with `Host: localhost` (unless `headers` names a Host) and,
/// for a body or a POST, a `Content-Length`.
pub fn http_request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut v = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        v.push_str("Host: localhost\r\n");
    }
    for (n, val) in headers {
        v.push_str(&format!("{n}: {val}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        v.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    v.push_str("\r\n");
    let mut v = v.into_bytes();
    v.extend_from_slice(body);
    v
}

impl RawResponse {
    /// The body parsed as JSON (panics with the response if it is not).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?} {:?}",
                self.head,
                self.body_str()
            )
        })
    }
}

/// One block of an SSE stream (up to a blank line), as a WHATWG client
/// parses it: `data` is `None` when the block had no `data` field (a comment
/// or a bare `retry:`), which clients do not dispatch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: Option<String>,
    pub retry: Option<u64>,
}

impl SseEvent {
    /// The data parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        let d = self.data.as_deref().unwrap_or_default();
        serde_json::from_str(d).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {self:?}"))
    }
}

/// Reads SSE blocks from a chunked `text/event-stream` body whose head was
/// already consumed (e.g. with `Reader::response_to("HEAD")`).
pub struct SseReader {
    pub r: Reader,
    pending: Vec<u8>,
    ended: bool,
}

impl SseReader {
    pub fn new(r: Reader) -> SseReader {
        SseReader {
            r,
            pending: Vec::new(),
            ended: false,
        }
    }

    /// The next block; `None` once the stream has ended (last chunk) and
    /// nothing complete is left.
    pub fn next_block(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(p) = self.pending.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.pending.drain(..p + 2).collect();
                return Some(parse_sse_block(&block[..p]));
            }
            if self.ended {
                return None;
            }
            match self.r.read_chunk() {
                Some(c) => self.pending.extend_from_slice(&c),
                None => self.ended = true,
            }
        }
    }

    /// The next block that clients dispatch (has a `data` field).
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let b = self.next_block()?;
            if b.data.is_some() {
                return Some(b);
            }
        }
    }

    /// Every remaining dispatched event, until the stream ends.
    pub fn rest(&mut self) -> Vec<SseEvent> {
        std::iter::from_fn(|| self.next_event()).collect()
    }
}

fn parse_sse_block(block: &[u8]) -> SseEvent {
    let text = std::str::from_utf8(block).expect("SSE is UTF-8");
    let mut ev = SseEvent::default();
    for line in text.split('\n') {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => ev.event = Some(value.to_string()),
            "id" => ev.id = Some(value.to_string()),
            "retry" => ev.retry = value.parse().ok(),
            "data" => {
                // WHATWG: each data line appends its value and a LF; the
                // final LF is removed at dispatch.
                match &mut ev.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => ev.data = Some(value.to_string()),
                }
            }
            _ => {}
        }
    }
    ev
}

// ---------------------------------------------------------------------------
// The real binary as a child process.

/// A `conduit serve` child process; killed on drop.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Proc {
    /// A `kB` field of the process's `/proc/PID/status` (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `conduit serve` on an ephemeral port and reads the port from its log.
pub fn start_binary(extra_env: &[(&str, &str)]) -> Proc {
    start_binary_with(&[], extra_env, None)
}

/// Like [`start_binary`], with extra `serve` arguments and a working directory.
pub fn start_binary_with(
    args: &[&str],
    extra_env: &[(&str, &str)],
    cwd: Option<&std::path::Path>,
) -> Proc {
    spawn_binary(args, extra_env, cwd, false)
}

/// Like [`start_binary`], but the log pipe's reader goes away once the
/// server has logged its address (a supervisor's log pipe that closed).
pub fn start_binary_closing_log(extra_env: &[(&str, &str)]) -> Proc {
    spawn_binary(&[], extra_env, None, true)
}

fn spawn_binary(
    args: &[&str],
    extra_env: &[(&str, &str)],
    cwd: Option<&std::path::Path>,
    close_log: bool,
) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conduit"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--io-threads",
        "1",
        "--log-format",
        "json",
    ])
    .env("RUST_LOG", "info")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd.args(args);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn conduit");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if let Some(addr) = v["fields"]["listen"].as_str() {
                    let _ = tx.send(addr.to_string());
                    if close_log {
                        return;
                    }
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("conduit logged its address");
    Proc {
        child,
        addr: addr.parse().unwrap(),
    }
}
