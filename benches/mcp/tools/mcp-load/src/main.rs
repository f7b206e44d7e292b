//! mcp-load: drive `tools/call` over MCP Streamable HTTP with C concurrent
//! clients and measure calls/s and latency.
//!
//! Each client is one raw keep-alive HTTP/1.1 connection (TCP_NODELAY) that
//! does what an MCP client does in the session era:
//!
//! 1. `POST PATH` `initialize` (protocolVersion `--protocol-version`,
//!    default 2025-06-18) and keeps the `Mcp-Session-Id` it is given (if any)
//!    and the protocol version the server chose;
//! 2. `POST PATH` `notifications/initialized` (expects 202/200/204);
//! 3. loops `POST PATH` `tools/call` `{"name": TOOL, "arguments": {"text": TEXT}}`
//!    with `Content-Type: application/json`,
//!    `Accept: application/json, text/event-stream`, `Mcp-Session-Id` and
//!    `MCP-Protocol-Version`, one call at a time, until the run ends.
//!
//! Replies may be JSON (`application/json`, Content-Length or chunked) or an
//! SSE stream (`text/event-stream`, chunked, Content-Length or
//! close-delimited): the client takes the `data:` event that is the JSON-RPC
//! response with the id it sent (other events, e.g. priming events with empty
//! data or notifications, are skipped), then reads the body to its end so the
//! connection can be reused. A call counts as OK when that response has a
//! `result` whose first content block is `{"type":"text","text":TEXT}` and
//! `isError` is not true. A call's latency runs from just before its request
//! is written to when its response has been parsed.
//!
//! After all clients are set up: `--warmup` seconds (not measured), then a
//! `--duration` second window. Calls completing inside the window count. With
//! `--server-pid`, the server's utime+stime (/proc/PID/stat) is read at the
//! window's start and end (CPU µs per call, server cores) and its VmRSS at
//! the end; the machine's busy time (/proc/stat) minus server and client gives
//! "other cores" (anything else running: > 0.15 means the run was disturbed).
//!
//! Usage:
//!   mcp-load --addr 127.0.0.1:8080 [--path /mcp] [--clients 64] [--duration 10]
//!            [--warmup 2] [--threads <cores>] [--server-pid PID] [--tool echo]
//!            [--text hello] [--protocol-version 2025-06-18] [--timeout 10]
//!            [--accept 'application/json, text/event-stream']
//!
//! `--accept text/event-stream` asks a server that can answer either way for
//! SSE replies.
//!
//! The last line of output is machine-readable: `RESULT key=value ...`.
//! Exit status 1 when no call succeeded (or no client could initialize).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone)]
struct Args {
    addr: String,
    path: String,
    clients: usize,
    duration: f64,
    warmup: f64,
    threads: usize,
    server_pid: Option<u32>,
    tool: String,
    text: String,
    protocol_version: String,
    accept: String,
    timeout: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: mcp-load --addr HOST:PORT [--path /mcp] [--clients 64] [--duration 10] \
         [--warmup 2] [--threads N] [--server-pid PID] [--tool echo] [--text hello] \
         [--protocol-version 2025-06-18] [--accept 'application/json, text/event-stream'] \
         [--timeout 10]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut a = Args {
        addr: String::new(),
        path: "/mcp".into(),
        clients: 64,
        duration: 10.0,
        warmup: 2.0,
        threads: cores,
        server_pid: None,
        tool: "echo".into(),
        text: "hello".into(),
        protocol_version: "2025-06-18".into(),
        accept: "application/json, text/event-stream".into(),
        timeout: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--addr" => a.addr = v(),
            "--path" => a.path = v(),
            "--clients" | "--conns" => a.clients = v().parse().unwrap_or_else(|_| usage()),
            "--duration" => a.duration = v().parse().unwrap_or_else(|_| usage()),
            "--warmup" => a.warmup = v().parse().unwrap_or_else(|_| usage()),
            "--threads" => a.threads = v().parse().unwrap_or_else(|_| usage()),
            "--server-pid" => a.server_pid = Some(v().parse().unwrap_or_else(|_| usage())),
            "--tool" => a.tool = v(),
            "--text" => a.text = v(),
            "--protocol-version" => a.protocol_version = v(),
            "--accept" => a.accept = v(),
            "--timeout" => a.timeout = v().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if a.addr.is_empty() || a.clients == 0 || a.threads == 0 || a.duration <= 0.0 {
        usage();
    }
    a
}

// ------------------------------------------------------------------ /proc ---

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime+stime of a process (all threads), in clock ticks.
fn proc_ticks(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm) ": state is field 0, utime field 11, stime field 12.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Ticks the whole machine spent not idle (user nice system irq softirq steal).
fn busy_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let l = s.lines().next()?;
    let f: Vec<u64> = l
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    Some(f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7)?)
}

fn rss_kib(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[derive(Clone, Copy, Default)]
struct Snap {
    at: Option<Instant>,
    server: Option<u64>,
    client: Option<u64>,
    busy: Option<u64>,
}

fn snap(server_pid: Option<u32>) -> Snap {
    Snap {
        at: Some(Instant::now()),
        server: server_pid.and_then(|p| proc_ticks(&p.to_string())),
        client: proc_ticks("self"),
        busy: busy_ticks(),
    }
}

// ------------------------------------------------------------------- HTTP ---

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Framing {
    Length,
    Chunked,
    Close,
}

impl Framing {
    fn name(self) -> &'static str {
        match self {
            Framing::Length => "length",
            Framing::Chunked => "chunked",
            Framing::Close => "close",
        }
    }
}

enum BodyState {
    Length(usize),
    Chunked(Chunk),
    Close,
    Done,
}

enum Chunk {
    Size,
    Data(usize),
    Crlf,
    Trailers,
}

struct Head {
    status: u16,
    sse: bool,
    framing: Framing,
    close: bool,
    session: Option<String>,
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    /// Decoded body bytes of the current response.
    body: Vec<u8>,
    state: BodyState,
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Conn {
    async fn connect(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            pos: 0,
            body: Vec::with_capacity(4096),
            state: BodyState::Done,
        })
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more bytes into the buffer; Ok(0) at EOF.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 8192 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        // read_buf appends to the Vec's spare capacity.
        self.stream.read_buf(&mut self.buf).await
    }

    async fn head(&mut self) -> io::Result<Head> {
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut hs);
            match r
                .parse(&self.buf[self.pos..])
                .map_err(|e| bad(format!("bad response head: {e}")))?
            {
                httparse::Status::Complete(n) => {
                    let status = r.code.unwrap_or(0);
                    let mut h = Head {
                        status,
                        sse: false,
                        framing: Framing::Close,
                        close: r.version == Some(0),
                        session: None,
                    };
                    let mut len = None;
                    let mut chunked = false;
                    for x in r.headers.iter() {
                        let v = std::str::from_utf8(x.value).unwrap_or("");
                        if x.name.eq_ignore_ascii_case("content-length") {
                            len = Some(
                                v.trim()
                                    .parse::<usize>()
                                    .map_err(|_| bad("bad content-length"))?,
                            );
                        } else if x.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = v.to_ascii_lowercase().contains("chunked");
                        } else if x.name.eq_ignore_ascii_case("content-type") {
                            h.sse = v.to_ascii_lowercase().starts_with("text/event-stream");
                        } else if x.name.eq_ignore_ascii_case("connection") {
                            let v = v.to_ascii_lowercase();
                            if v.contains("close") {
                                h.close = true;
                            } else if v.contains("keep-alive") {
                                h.close = false;
                            }
                        } else if x.name.eq_ignore_ascii_case("mcp-session-id") {
                            h.session = Some(v.to_string());
                        }
                    }
                    self.pos += n;
                    if (100..200).contains(&status) {
                        continue; // 1xx: the real response follows
                    }
                    h.framing = if chunked {
                        Framing::Chunked
                    } else if len.is_some() {
                        Framing::Length
                    } else if status == 204 || status == 304 {
                        len = Some(0);
                        Framing::Length
                    } else {
                        Framing::Close
                    };
                    if h.framing == Framing::Close {
                        h.close = true;
                    }
                    self.body.clear();
                    self.state = match h.framing {
                        Framing::Length => BodyState::Length(len.unwrap_or(0)),
                        Framing::Chunked => BodyState::Chunked(Chunk::Size),
                        Framing::Close => BodyState::Close,
                    };
                    return Ok(h);
                }
                httparse::Status::Partial => {
                    if self.fill().await? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed before a response",
                        ));
                    }
                }
            }
        }
    }
}

impl Conn {
    /// Appends the next part of the body to `self.body`. Ok(false) = the body ended.
    async fn body_next(&mut self) -> io::Result<bool> {
        loop {
            match &mut self.state {
                BodyState::Done => return Ok(false),
                BodyState::Length(0) => {
                    self.state = BodyState::Done;
                    return Ok(false);
                }
                BodyState::Length(rem) => {
                    let rem = *rem;
                    if self.avail().is_empty() && self.fill().await? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "EOF inside a body",
                        ));
                    }
                    let take = rem.min(self.buf.len() - self.pos);
                    self.body
                        .extend_from_slice(&self.buf[self.pos..self.pos + take]);
                    self.pos += take;
                    self.state = BodyState::Length(rem - take);
                    return Ok(true);
                }
                BodyState::Close => {
                    if self.avail().is_empty() && self.fill().await? == 0 {
                        self.state = BodyState::Done;
                        return Ok(false);
                    }
                    self.body.extend_from_slice(&self.buf[self.pos..]);
                    self.pos = self.buf.len();
                    return Ok(true);
                }
                BodyState::Chunked(ch) => match ch {
                    Chunk::Size => match find_crlf(self.avail()) {
                        Some(i) => {
                            let line = std::str::from_utf8(&self.buf[self.pos..self.pos + i])
                                .map_err(|_| bad("bad chunk size"))?;
                            let hex = line.split(';').next().unwrap_or("").trim();
                            let n = usize::from_str_radix(hex, 16)
                                .map_err(|_| bad(format!("bad chunk size {hex:?}")))?;
                            self.pos += i + 2;
                            self.state = BodyState::Chunked(if n == 0 {
                                Chunk::Trailers
                            } else {
                                Chunk::Data(n)
                            });
                        }
                        None => {
                            if self.fill().await? == 0 {
                                return Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "EOF inside a chunked body",
                                ));
                            }
                        }
                    },
                    Chunk::Data(rem) => {
                        let rem = *rem;
                        if self.avail().is_empty() && self.fill().await? == 0 {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "EOF inside a chunk",
                            ));
                        }
                        let take = rem.min(self.buf.len() - self.pos);
                        self.body
                            .extend_from_slice(&self.buf[self.pos..self.pos + take]);
                        self.pos += take;
                        self.state = BodyState::Chunked(if rem == take {
                            Chunk::Crlf
                        } else {
                            Chunk::Data(rem - take)
                        });
                        return Ok(true);
                    }
                    Chunk::Crlf => {
                        if self.avail().len() < 2 {
                            if self.fill().await? == 0 {
                                return Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "EOF after a chunk",
                                ));
                            }
                            continue;
                        }
                        if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
                            return Err(bad("chunk not followed by CRLF"));
                        }
                        self.pos += 2;
                        self.state = BodyState::Chunked(Chunk::Size);
                    }
                    Chunk::Trailers => match find_crlf(self.avail()) {
                        Some(0) => {
                            self.pos += 2;
                            self.state = BodyState::Done;
                            return Ok(false);
                        }
                        Some(i) => self.pos += i + 2,
                        None => {
                            if self.fill().await? == 0 {
                                return Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "EOF in trailers",
                                ));
                            }
                        }
                    },
                },
            }
        }
    }
}

// -------------------------------------------------------------------- MCP ---

/// One JSON-RPC message, as much of it as the client looks at.
#[derive(Deserialize)]
struct RpcMsg<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct InitResult {
    #[serde(rename = "protocolVersion")]
    protocol_version: String,
    #[serde(rename = "serverInfo", default)]
    server_info: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct CallResult<'a> {
    #[serde(borrow)]
    content: Vec<ContentBlock<'a>>,
    #[serde(rename = "isError", default)]
    is_error: Option<bool>,
}

#[derive(Deserialize)]
struct ContentBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
}

/// What one POST got back.
struct Reply {
    status: u16,
    sse: bool,
    framing: Framing,
    session: Option<String>,
    /// The JSON-RPC response with the id that was sent (or the JSON body).
    msg: Option<Vec<u8>>,
    /// SSE events that were not the response (priming events, notifications).
    other_events: u64,
}

#[derive(Default, Clone)]
struct Errors {
    io: u64,
    timeout: u64,
    http: u64,
    rpc: u64,
    tool: u64,
    mismatch: u64,
    no_reply: u64,
    reconnects: u64,
}

impl Errors {
    fn total(&self) -> u64 {
        self.io + self.timeout + self.http + self.rpc + self.tool + self.mismatch + self.no_reply
    }
    fn add(&mut self, o: &Errors) {
        self.io += o.io;
        self.timeout += o.timeout;
        self.http += o.http;
        self.rpc += o.rpc;
        self.tool += o.tool;
        self.mismatch += o.mismatch;
        self.no_reply += o.no_reply;
        self.reconnects += o.reconnects;
    }
}

/// Splits complete SSE lines off `body[*from..]`; dispatches each event's
/// data. Returns the matching message if one was found.
fn sse_scan(
    body: &[u8],
    from: &mut usize,
    data: &mut Vec<u8>,
    id: &[u8],
    others: &mut u64,
) -> Option<Vec<u8>> {
    loop {
        let rest = &body[*from..];
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let mut line = &rest[..nl];
        *from += nl + 1;
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.is_empty() {
            // End of an event.
            if !data.is_empty() {
                if let Ok(m) = serde_json::from_slice::<RpcMsg>(data) {
                    if m.id.map(|r| r.get().as_bytes()) == Some(id)
                        && (m.result.is_some() || m.error.is_some())
                    {
                        return Some(std::mem::take(data));
                    }
                }
                *others += 1;
                data.clear();
            } else {
                *others += 1;
            }
        } else if let Some(d) = line.strip_prefix(b"data:") {
            let d = d.strip_prefix(b" ").unwrap_or(d);
            if !data.is_empty() {
                data.push(b'\n');
            }
            data.extend_from_slice(d);
        }
        // id:, event:, retry: and comments are ignored.
    }
}

struct Session {
    addr: String,
    conn: Option<Conn>,
    req_head: String,
    session: Option<String>,
    version: String,
    timeout: Duration,
    sse_data: Vec<u8>,
    /// The request being sent (reused).
    out: Vec<u8>,
}

impl Session {
    fn head(&self, with_session: bool) -> String {
        let mut h = self.req_head.clone();
        if with_session {
            if let Some(s) = &self.session {
                h.push_str("Mcp-Session-Id: ");
                h.push_str(s);
                h.push_str("\r\n");
            }
            h.push_str("MCP-Protocol-Version: ");
            h.push_str(&self.version);
            h.push_str("\r\n");
        }
        h
    }

    /// One POST with `body`; `id` = the JSON-RPC id to wait for (None for a
    /// notification).
    async fn post(
        &mut self,
        head: &str,
        body: &[u8],
        id: Option<&[u8]>,
        reconnects: &mut u64,
    ) -> io::Result<Reply> {
        if self.conn.is_none() {
            self.conn = Some(Conn::connect(&self.addr).await?);
            *reconnects += 1;
        }
        let c = self.conn.as_mut().unwrap();
        let req = &mut self.out;
        req.clear();
        req.extend_from_slice(head.as_bytes());
        req.extend_from_slice(b"Content-Length: ");
        {
            use std::io::Write;
            let _ = write!(req, "{}", body.len());
        }
        req.extend_from_slice(b"\r\n\r\n");
        req.extend_from_slice(body);
        let r = async {
            c.stream.write_all(req).await?;
            let h = c.head().await?;
            let mut reply = Reply {
                status: h.status,
                sse: h.sse,
                framing: h.framing,
                session: h.session,
                msg: None,
                other_events: 0,
            };
            if h.sse && h.status == 200 {
                let mut from = 0;
                self.sse_data.clear();
                while c.body_next().await? {
                    if reply.msg.is_none() {
                        if let Some(id) = id {
                            reply.msg = sse_scan(
                                &c.body,
                                &mut from,
                                &mut self.sse_data,
                                id,
                                &mut reply.other_events,
                            );
                            if reply.msg.is_some() && h.framing == Framing::Close {
                                // Close-delimited: the stream ends only when the
                                // server closes it; don't wait for that.
                                break;
                            }
                        }
                    }
                }
                if reply.msg.is_none() {
                    // A last event not followed by a blank line.
                    if let Some(id) = id {
                        c.body.extend_from_slice(b"\n\n");
                        reply.msg = sse_scan(
                            &c.body,
                            &mut from,
                            &mut self.sse_data,
                            id,
                            &mut reply.other_events,
                        );
                    }
                }
            } else {
                while c.body_next().await? {}
                if !c.body.is_empty() {
                    reply.msg = Some(std::mem::take(&mut c.body));
                }
            }
            Ok::<(Reply, bool), io::Error>((reply, h.close))
        };
        match tokio::time::timeout(self.timeout, r).await {
            Ok(Ok((reply, close))) => {
                if close || reply.framing == Framing::Close {
                    self.conn = None;
                }
                Ok(reply)
            }
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
            }
        }
    }
}

struct Setup {
    protocol: String,
    session: bool,
    init_kind: String,
    server_info: String,
}

async fn setup(s: &mut Session, a: &Args) -> Result<Setup, String> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{}","capabilities":{{}},"clientInfo":{{"name":"mcp-load","version":"0.1.0"}}}}}}"#,
        a.protocol_version
    );
    let mut rc = 0;
    let head = s.head(false);
    let r = s
        .post(&head, body.as_bytes(), Some(b"0"), &mut rc)
        .await
        .map_err(|e| format!("initialize: {e}"))?;
    if r.status != 200 {
        return Err(format!(
            "initialize: HTTP {}: {}",
            r.status,
            String::from_utf8_lossy(r.msg.as_deref().unwrap_or(b""))
        ));
    }
    let msg = r.msg.ok_or("initialize: no response")?;
    let m: RpcMsg =
        serde_json::from_slice(&msg).map_err(|e| format!("initialize: bad JSON ({e})"))?;
    let res = m
        .result
        .ok_or_else(|| format!("initialize: error {}", m.error.map_or("?", |e| e.get())))?;
    let ir: InitResult =
        serde_json::from_str(res.get()).map_err(|e| format!("initialize result: {e}"))?;
    s.version = ir.protocol_version.clone();
    s.session = r.session.clone();
    let kind = format!(
        "{}/{}",
        if r.sse { "sse" } else { "json" },
        r.framing.name()
    );
    let head = s.head(true);
    let n = s
        .post(
            &head,
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            None,
            &mut rc,
        )
        .await
        .map_err(|e| format!("notifications/initialized: {e}"))?;
    if !matches!(n.status, 200 | 202 | 204) {
        return Err(format!("notifications/initialized: HTTP {}", n.status));
    }
    Ok(Setup {
        protocol: ir.protocol_version,
        session: r.session.is_some(),
        init_kind: kind,
        server_info: ir.server_info.map(|v| v.to_string()).unwrap_or_default(),
    })
}

struct ClientOut {
    lat_ns: Vec<u64>,
    ok: u64,
    errors: Errors,
    kinds: [u64; 6], // json/sse x length/chunked/close
    other_events: u64,
    first_error: Option<String>,
}

fn kind_index(sse: bool, f: Framing) -> usize {
    (if sse { 3 } else { 0 })
        + match f {
            Framing::Length => 0,
            Framing::Chunked => 1,
            Framing::Close => 2,
        }
}
const KIND_NAMES: [&str; 6] = [
    "json/length",
    "json/chunked",
    "json/close",
    "sse/length",
    "sse/chunked",
    "sse/close",
];

async fn run_calls(mut s: Session, a: Arc<Args>, t0: Instant, t1: Instant) -> ClientOut {
    let mut out = ClientOut {
        lat_ns: Vec::with_capacity(1 << 14),
        ok: 0,
        errors: Errors::default(),
        kinds: [0; 6],
        other_events: 0,
        first_error: None,
    };
    let head = s.head(true);
    let args = serde_json::json!({ "name": a.tool, "arguments": { "text": a.text } }).to_string();
    let mut id: u64 = 1;
    let mut consecutive = 0u32;
    let mut body = String::with_capacity(256);
    let mut ids = String::with_capacity(24);
    while Instant::now() < t1 {
        use std::fmt::Write;
        id += 1;
        ids.clear();
        let _ = write!(ids, "{id}");
        body.clear();
        let _ = write!(
            body,
            r#"{{"jsonrpc":"2.0","id":{ids},"method":"tools/call","params":{args}}}"#
        );
        let mut reconnects = 0;
        let start = Instant::now();
        let r = s
            .post(
                &head,
                body.as_bytes(),
                Some(ids.as_bytes()),
                &mut reconnects,
            )
            .await;
        let end = Instant::now();
        let counted = end >= t0 && end < t1;
        let mut err = Errors {
            reconnects,
            ..Default::default()
        };
        let mut what = String::new();
        match r {
            Err(e) => {
                if e.kind() == io::ErrorKind::TimedOut {
                    err.timeout = 1;
                } else {
                    err.io = 1;
                }
                what = format!("{e}");
            }
            Ok(r) => {
                out.other_events += if counted { r.other_events } else { 0 };
                if r.status != 200 {
                    err.http = 1;
                    what = format!(
                        "HTTP {}: {}",
                        r.status,
                        String::from_utf8_lossy(r.msg.as_deref().unwrap_or(b""))
                    );
                } else if let Some(msg) = r.msg {
                    out.kinds[kind_index(r.sse, r.framing)] += counted as u64;
                    match serde_json::from_slice::<RpcMsg>(&msg) {
                        Ok(m) if m.id.map(|x| x.get().as_bytes()) != Some(ids.as_bytes()) => {
                            err.mismatch = 1;
                            what = format!("wrong id: {}", String::from_utf8_lossy(&msg));
                        }
                        Ok(m) => match m
                            .result
                            .map(|x| serde_json::from_str::<CallResult>(x.get()))
                        {
                            Some(Ok(cr)) => {
                                let good = cr.content.first().is_some_and(|b| {
                                    b.kind == "text" && b.text.as_deref() == Some(a.text.as_str())
                                });
                                if cr.is_error == Some(true) {
                                    err.tool = 1;
                                    what = format!("isError: {}", String::from_utf8_lossy(&msg));
                                } else if !good {
                                    err.mismatch = 1;
                                    what = format!(
                                        "unexpected result: {}",
                                        String::from_utf8_lossy(&msg)
                                    );
                                }
                            }
                            _ => {
                                err.rpc = 1;
                                what = format!("error: {}", String::from_utf8_lossy(&msg));
                            }
                        },
                        Err(e) => {
                            err.mismatch = 1;
                            what = format!("bad JSON ({e}): {}", String::from_utf8_lossy(&msg));
                        }
                    }
                } else {
                    err.no_reply = 1;
                    what = "200 without the JSON-RPC response".into();
                }
            }
        }
        if err.total() == 0 {
            consecutive = 0;
            if counted {
                out.ok += 1;
                out.lat_ns.push((end - start).as_nanos() as u64);
            }
        } else {
            consecutive += 1;
            if out.first_error.is_none() {
                out.first_error = Some(what.chars().take(300).collect());
            }
            if counted {
                out.errors.add(&err);
            }
            if consecutive > 3 {
                // Back off a little so a broken server is not hammered.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        if counted && err.total() == 0 {
            out.errors.reconnects += err.reconnects;
        }
    }
    out
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1e6
}

fn main() {
    let a = Arc::new(parse_args());
    let rt = if a.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(a.threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    std::process::exit(rt.block_on(run(a)));
}

async fn run(a: Arc<Args>) -> i32 {
    let host = a.addr.clone();
    let req_head = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: {}\r\n",
        a.path, a.accept
    );
    eprintln!(
        "mcp-load: {} clients, {} thread(s), http://{}{}, tools/call {} {{\"text\":{:?}}}, {}s warm-up + {}s window",
        a.clients, a.threads, a.addr, a.path, a.tool, a.text, a.warmup, a.duration
    );

    // Phase 1: every client connects, initializes and sends initialized.
    let ready = Arc::new(AtomicUsize::new(0));
    let (go_tx, go_rx) = tokio::sync::watch::channel::<Option<(Instant, Instant)>>(None);
    let (info_tx, mut info_rx) = tokio::sync::mpsc::unbounded_channel::<Result<Setup, String>>();
    let mut handles = Vec::with_capacity(a.clients);
    let t_setup = Instant::now();
    for _ in 0..a.clients {
        let a = a.clone();
        let ready = ready.clone();
        let mut go = go_rx.clone();
        let info_tx = info_tx.clone();
        let req_head = req_head.clone();
        handles.push(tokio::spawn(async move {
            let mut s = Session {
                addr: a.addr.clone(),
                conn: None,
                req_head,
                session: None,
                version: a.protocol_version.clone(),
                timeout: Duration::from_secs_f64(a.timeout),
                sse_data: Vec::new(),
                out: Vec::with_capacity(1024),
            };
            let r = setup(&mut s, &a).await;
            let ok = r.is_ok();
            let _ = info_tx.send(r);
            ready.fetch_add(1, Ordering::SeqCst);
            if !ok {
                return None;
            }
            let (t0, t1) = loop {
                if let Some(t) = *go.borrow_and_update() {
                    break t;
                }
                if go.changed().await.is_err() {
                    return None;
                }
            };
            Some(run_calls(s, a, t0, t1).await)
        }));
    }
    drop(info_tx);
    let mut setups = Vec::new();
    let mut setup_errors = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while setups.len() + setup_errors.len() < a.clients {
        match tokio::time::timeout_at(deadline.into(), info_rx.recv()).await {
            Ok(Some(Ok(s))) => setups.push(s),
            Ok(Some(Err(e))) => setup_errors.push(e),
            _ => break,
        }
    }
    let setup_s = t_setup.elapsed().as_secs_f64();
    if let Some(s) = setups.first() {
        eprintln!(
            "setup: {}/{} clients initialized in {:.2}s; protocol {}; session ids {}; initialize reply {}; server {}",
            setups.len(),
            a.clients,
            setup_s,
            s.protocol,
            setups.iter().filter(|s| s.session).count(),
            s.init_kind,
            s.server_info
        );
    }
    for e in setup_errors.iter().take(3) {
        eprintln!("setup error: {e}");
    }
    if setups.is_empty() {
        eprintln!("mcp-load: no client could initialize");
        println!(
            "RESULT clients={} ok_clients=0 calls=0 calls_per_s=0 errors=setup",
            a.clients
        );
        return 1;
    }

    // Phase 2: warm-up, then the window. A sampler thread reads /proc at
    // the window's edges (the runtime's own threads are busy).
    let t0 = Instant::now() + Duration::from_secs_f64(a.warmup);
    let t1 = t0 + Duration::from_secs_f64(a.duration);
    let pid = a.server_pid;
    let sampler = std::thread::spawn(move || {
        std::thread::sleep(t0.saturating_duration_since(Instant::now()));
        let s0 = snap(pid);
        std::thread::sleep(t1.saturating_duration_since(Instant::now()));
        let s1 = snap(pid);
        let rss = pid.and_then(|p| rss_kib(&p.to_string()));
        (s0, s1, rss)
    });
    let _ = go_tx.send(Some((t0, t1)));

    let mut lat = Vec::new();
    let mut ok = 0u64;
    let mut errors = Errors::default();
    let mut kinds = [0u64; 6];
    let mut other_events = 0u64;
    let mut first_error = None;
    for h in handles {
        if let Ok(Some(o)) = h.await {
            lat.extend_from_slice(&o.lat_ns);
            ok += o.ok;
            errors.add(&o.errors);
            for (k, n) in kinds.iter_mut().zip(o.kinds) {
                *k += n;
            }
            other_events += o.other_events;
            if first_error.is_none() {
                first_error = o.first_error;
            }
        }
    }
    let (s0, s1, rss) = sampler.join().unwrap_or_default();
    let window = match (s0.at, s1.at) {
        (Some(x), Some(y)) => (y - x).as_secs_f64(),
        _ => a.duration,
    };
    lat.sort_unstable();
    let hz = clk_tck();
    let cps = ok as f64 / window;
    let cores = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (Some(x), Some(y)) => Some((y.saturating_sub(x)) as f64 / hz / window),
        _ => None,
    };
    let server_cores = cores(s0.server, s1.server);
    let client_cores = cores(s0.client, s1.client);
    let busy_cores = cores(s0.busy, s1.busy);
    let other_cores = busy_cores
        .map(|b| (b - server_cores.unwrap_or(0.0) - client_cores.unwrap_or(0.0)).max(0.0));
    let cpu_us = match (s0.server, s1.server) {
        (Some(x), Some(y)) if ok > 0 => Some((y - x) as f64 / hz * 1e6 / ok as f64),
        _ => None,
    };
    let kind = kinds
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(i, n)| format!("{}:{n}", KIND_NAMES[i]))
        .collect::<Vec<_>>()
        .join(",");
    let f = |x: Option<f64>, p: usize| x.map_or("na".to_string(), |v| format!("{v:.p$}"));
    let (p50, p90, p99, p999) = (
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        pct(&lat, 0.999),
    );
    let max = lat.last().map_or(f64::NAN, |&x| x as f64 / 1e6);
    eprintln!(
        "calls: {ok} OK in {window:.3}s = {cps:.1} calls/s; latency ms p50 {p50:.3} p90 {p90:.3} p99 {p99:.3} p99.9 {p999:.3} max {max:.3}"
    );
    eprintln!(
        "errors: {} (io {}, timeout {}, http {}, rpc {}, isError {}, mismatch {}, no reply {}); reconnects {}; replies {kind}; other SSE events {other_events}",
        errors.total(),
        errors.io,
        errors.timeout,
        errors.http,
        errors.rpc,
        errors.tool,
        errors.mismatch,
        errors.no_reply,
        errors.reconnects
    );
    if let Some(e) = &first_error {
        eprintln!("first error: {e}");
    }
    eprintln!(
        "cores: server {} client {} other {}; server CPU µs/call {}; server RSS {} KiB",
        f(server_cores, 2),
        f(client_cores, 2),
        f(other_cores, 2),
        f(cpu_us, 2),
        rss.map_or("na".into(), |r| r.to_string())
    );
    let s = &setups[0];
    println!(
        "RESULT clients={} ok_clients={} window_s={window:.3} calls={ok} calls_per_s={cps:.1} \
         p50_ms={p50:.3} p90_ms={p90:.3} p99_ms={p99:.3} p999_ms={p999:.3} max_ms={max:.3} \
         errors={} reconnects={} server_cpu_us_per_call={} server_cores={} server_rss_kib={} \
         client_cores={} other_cores={} protocol={} sessions={} init_reply={} call_reply={} other_events={other_events}",
        a.clients,
        setups.len(),
        errors.total() + setup_errors.len() as u64,
        errors.reconnects,
        f(cpu_us, 2),
        f(server_cores, 2),
        rss.map_or("na".into(), |r| r.to_string()),
        f(client_cores, 2),
        f(other_cores, 2),
        s.protocol,
        setups.iter().filter(|s| s.session).count(),
        s.init_kind,
        if kind.is_empty() { "none".into() } else { kind },
    );
    if ok == 0 {
        1
    } else {
        0
    }
}
