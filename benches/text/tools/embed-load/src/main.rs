//! embed-load: C client threads, each with one keep-alive HTTP/1.1
//! connection, send requests back to back for D seconds (after a warm-up)
//! and print one JSON line: requests/s, texts/s, p50/p99 latency, errors.
//!
//! usage: embed-load ADDR METHOD PATH BODIES CLIENTS DURATION_S WARMUP_S TEXTS_PER_REQUEST
//!
//! BODIES is a file of request bodies, one JSON document per line (or "-"
//! for none, e.g. `GET /json`). Client c starts at line c × lines / C and
//! cycles through the file, so concurrent requests carry different texts.
//! TEXTS_PER_REQUEST (0 for no check) is how many vectors an answer must
//! hold: the first answer on each connection, and every answer that is not
//! a 200, is checked by counting `"embedding"` (OpenAI's shape) — a wrong
//! count is an error. Answers may use Content-Length or chunked encoding.
//! Answers that arrive within the DURATION window after the warm-up count
//! (with the latency of their request), wherever their request started. The last line printed is the
//! JSON result (client_cores: this process's CPU over the window, to tell
//! when the client is the limit); the first error, if any, goes to stderr.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn find(h: &[u8], pat: &[u8]) -> Option<usize> {
    h.windows(pat.len()).position(|w| w == pat)
}

/// How many times `"embedding"` is a key (followed by `:`) in `h`; OpenAI's
/// items also hold `"object":"embedding"`, which is not counted.
fn count_vectors(h: &[u8]) -> usize {
    let pat = b"\"embedding\"";
    let mut n = 0;
    let mut at = 0;
    while let Some(i) = find(&h[at..], pat) {
        at += i + pat.len();
        let rest = &h[at..];
        let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if rest.get(skip) == Some(&b':') {
            n += 1;
        }
    }
    n
}

/// This process's CPU time (all threads, live or exited), in seconds:
/// utime + stime of /proc/self/stat, in USER_HZ (100 on Linux) ticks.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    (tick(11) + tick(12)) as f64 / 100.0
}

/// A complete response at the start of `buf`: (status, total length, body).
/// `None` while more bytes are needed.
fn parse(buf: &[u8]) -> Result<Option<(u16, usize, Vec<u8>)>, String> {
    let Some(i) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head_end = i + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let mut len = None;
    let mut chunked = false;
    for l in head.lines() {
        if let Some(v) = l.strip_prefix("content-length:") {
            len = Some(
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| "bad content-length")?,
            );
        } else if let Some(v) = l.strip_prefix("transfer-encoding:") {
            chunked = v.contains("chunked");
        }
    }
    if !chunked {
        let len = len.unwrap_or(0);
        if buf.len() < head_end + len {
            return Ok(None);
        }
        return Ok(Some((
            status,
            head_end + len,
            buf[head_end..head_end + len].to_vec(),
        )));
    }
    let mut at = head_end;
    let mut body = Vec::new();
    loop {
        let Some(e) = find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let size_txt = String::from_utf8_lossy(&buf[at..at + e]).to_string();
        let size = usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_txt:?}"))?;
        let data = at + e + 2;
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            let Some(t) = find(&buf[data..], b"\r\n") else {
                return Ok(None);
            };
            return Ok(Some((status, data + t + 2, body)));
        }
        if buf.len() < data + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[data..data + size]);
        at = data + size + 2;
    }
}

/// Reads one response; returns its status and body. `buf` keeps bytes past it.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(u16, Vec<u8>)> {
    let mut tmp = vec![0u8; 1 << 18];
    loop {
        match parse(buf) {
            Ok(Some((status, used, body))) => {
                buf.drain(..used);
                return Ok((status, body));
            }
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::other(e)),
        }
        let n = s.read(&mut tmp)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

struct Tally {
    lat: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 9 {
        eprintln!("usage: embed-load ADDR METHOD PATH BODIES CLIENTS DURATION_S WARMUP_S TEXTS_PER_REQUEST");
        std::process::exit(2);
    }
    let (addr, method, path) = (a[1].clone(), a[2].clone(), a[3].clone());
    let bodies: Vec<Vec<u8>> = if a[4] == "-" {
        vec![Vec::new()]
    } else {
        std::fs::read_to_string(&a[4])
            .expect("bodies file")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.as_bytes().to_vec())
            .collect()
    };
    assert!(!bodies.is_empty(), "no bodies in {}", a[4]);
    let clients: usize = a[5].parse().expect("clients");
    let duration = Duration::from_secs_f64(a[6].parse().expect("duration"));
    let warmup = Duration::from_secs_f64(a[7].parse().expect("warmup"));
    let per_request: usize = a[8].parse().expect("texts per request");
    // Every request, head and body, built once.
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        bodies
            .iter()
            .map(|b| {
                let mut r = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
                if !b.is_empty() || method == "POST" {
                    r.push_str(&format!(
                        "Content-Type: application/json\r\nContent-Length: {}\r\n",
                        b.len()
                    ));
                }
                r.push_str("\r\n");
                let mut r = r.into_bytes();
                r.extend_from_slice(b);
                r
            })
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let measure_from = start + warmup;
    let measure_to = measure_from + duration;
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (requests, stop, addr) = (requests.clone(), stop.clone(), addr.clone());
            std::thread::spawn(move || {
                let mut t = Tally {
                    lat: Vec::with_capacity(1 << 14),
                    errors: 0,
                    first_error: None,
                };
                let mut next = c * requests.len() / clients.max(1);
                let mut s: Option<TcpStream> = None;
                let mut checked = false;
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if s.is_none() {
                        match TcpStream::connect(&addr) {
                            Ok(n) => {
                                n.set_nodelay(true).ok();
                                s = Some(n);
                                checked = false;
                                buf.clear();
                            }
                            Err(e) => {
                                t.errors += 1;
                                t.first_error.get_or_insert_with(|| format!("connect: {e}"));
                                std::thread::sleep(Duration::from_millis(10));
                                continue;
                            }
                        }
                    }
                    let conn = s.as_mut().expect("connected");
                    let req = &requests[next % requests.len()];
                    next += 1;
                    let t0 = Instant::now();
                    let res = conn
                        .write_all(req)
                        .and_then(|_| read_response(conn, &mut buf));
                    let now = Instant::now();
                    let took = now - t0;
                    // Counted: answers that arrive inside the window.
                    let measured = now >= measure_from && now <= measure_to;
                    match res {
                        Ok((200, body)) => {
                            if per_request > 0 && !checked {
                                checked = true;
                                let n = count_vectors(&body);
                                if n != per_request {
                                    t.errors += 1;
                                    t.first_error.get_or_insert_with(|| {
                                        format!("answer has {n} embeddings, want {per_request}")
                                    });
                                    continue;
                                }
                            }
                            if measured {
                                t.lat.push(took.as_micros().min(u32::MAX as u128) as u32);
                            }
                        }
                        Ok((status, body)) => {
                            if measured {
                                t.errors += 1;
                            }
                            t.first_error.get_or_insert_with(|| {
                                let b = String::from_utf8_lossy(&body);
                                format!(
                                    "status {status}: {}",
                                    b.chars().take(200).collect::<String>()
                                )
                            });
                        }
                        Err(e) => {
                            if measured {
                                t.errors += 1;
                            }
                            t.first_error.get_or_insert_with(|| format!("io: {e}"));
                            s = None;
                        }
                    }
                }
                t
            })
        })
        .collect();
    std::thread::sleep(measure_from.saturating_duration_since(Instant::now()));
    let cpu0 = cpu_secs();
    std::thread::sleep(measure_to.saturating_duration_since(Instant::now()));
    let cpu = cpu_secs() - cpu0;
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u32> = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in threads {
        let r = t.join().expect("client thread");
        all.extend(r.lat);
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let secs = duration.as_secs_f64();
    let mean = if all.is_empty() {
        0.0
    } else {
        all.iter().map(|&x| x as f64).sum::<f64>() / all.len() as f64
    };
    if let Some(e) = &first_error {
        eprintln!("embed-load: first error: {e}");
    }
    println!(
        "{{\"clients\":{clients},\"requests\":{},\"rps\":{:.2},\"texts_per_s\":{:.1},\"p50_us\":{},\"p99_us\":{},\"mean_us\":{:.0},\"errors\":{errors},\"client_cores\":{:.2}}}",
        all.len(),
        all.len() as f64 / secs,
        (all.len() * per_request.max(1)) as f64 / secs,
        pct(0.50),
        pct(0.99),
        mean,
        cpu / secs
    );
}
