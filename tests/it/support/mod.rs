//! Helpers shared by the integration tests: a real server on an ephemeral
//! loopback port, raw socket exchanges with timeouts, SSE reading.

#![allow(dead_code)]

use conduit::app::{self, Running};
use conduit::config::Config;
use conduit::http::Router;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
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
    TestServer { addr: running.local_addr(), running: Some(running) }
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
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn closes(&self) -> bool {
        self.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads responses from a stream, keeping bytes that belong to the next one.
pub struct Reader {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    pub fn new(stream: TcpStream) -> Reader {
        Reader { stream, buf: Vec::new() }
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
            Err(e) => panic!("read failed (timeout?): {e}; have {:?}", String::from_utf8_lossy(&self.buf)),
        }
    }

    /// Reads one response to a request with method `method` (HEAD has no body).
    pub fn response_to(&mut self, method: &str) -> RawResponse {
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if self.fill() == 0 {
                panic!("connection closed before a full head: {:?}", String::from_utf8_lossy(&self.buf));
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
        let mut r = RawResponse { status, head, headers, body: Vec::new() };
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
                panic!("closed before {:?}; have {:?}", String::from_utf8_lossy(pat), String::from_utf8_lossy(&self.buf));
            }
        }
    }

    /// Reads one chunk of a chunked body; `None` at the last chunk.
    pub fn read_chunk(&mut self) -> Option<Vec<u8>> {
        let line = self.read_until(b"\r\n");
        let size = usize::from_str_radix(std::str::from_utf8(&line[..line.len() - 2]).unwrap().trim(), 16).unwrap();
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
