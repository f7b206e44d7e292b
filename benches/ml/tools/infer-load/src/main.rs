//! infer-load: C client threads, each with one keep-alive HTTP/1.1
//! connection, send the same request back to back for D seconds (after a
//! warm-up) and print one JSON line: requests/s, p50/p99 latency, errors.
//!
//! usage: infer-load ADDR METHOD PATH BODY_FILE CLIENTS DURATION_S WARMUP_S [HEADER_LEN]
//!   BODY_FILE "-" for no body; HEADER_LEN sets Inference-Header-Content-Length.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn find(h: &[u8], pat: &[u8]) -> Option<usize> {
    h.windows(pat.len()).position(|w| w == pat)
}

/// Reads one response; returns its status. `buf` keeps bytes past it.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    let mut tmp = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut tmp)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut tmp)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    buf.drain(..head_end + len);
    Ok(status)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 8 {
        eprintln!("usage: infer-load ADDR METHOD PATH BODY_FILE CLIENTS DURATION_S WARMUP_S [HEADER_LEN]");
        std::process::exit(2);
    }
    let (addr, method, path) = (a[1].clone(), a[2].clone(), a[3].clone());
    let body = if a[4] == "-" { Vec::new() } else { std::fs::read(&a[4]).expect("body file") };
    let clients: usize = a[5].parse().expect("clients");
    let duration = Duration::from_secs_f64(a[6].parse().expect("duration"));
    let warmup = Duration::from_secs_f64(a[7].parse().expect("warmup"));
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    if let Some(h) = a.get(8) {
        req.push_str(&format!("Inference-Header-Content-Length: {h}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut req = req.into_bytes();
    req.extend_from_slice(&body);
    let req = Arc::new(req);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let measure_from = start + warmup;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (req, stop, addr) = (req.clone(), stop.clone(), addr.clone());
            std::thread::spawn(move || {
                let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
                let mut errors = 0u64;
                let mut s = TcpStream::connect(&addr).expect("connect");
                s.set_nodelay(true).ok();
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ok = s.write_all(&req).and_then(|_| read_response(&mut s, &mut buf));
                    match ok {
                        Ok(200) if t >= measure_from => lat.push(t.elapsed().as_micros() as u32),
                        Ok(200) => {}
                        Ok(_) if t >= measure_from => errors += 1,
                        Ok(_) => {}
                        Err(_) => {
                            errors += 1;
                            buf.clear();
                            match TcpStream::connect(&addr) {
                                Ok(n) => s = n,
                                Err(_) => std::thread::sleep(Duration::from_millis(10)),
                            }
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    std::thread::sleep(warmup + duration);
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u32> = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t.join().expect("client thread");
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "{{\"clients\":{clients},\"requests\":{},\"rps\":{:.1},\"p50_us\":{},\"p99_us\":{},\"errors\":{errors}}}",
        all.len(),
        all.len() as f64 / duration.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
}
