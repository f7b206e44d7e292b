//! sse-fanout: open N SSE streams to one server and measure fan-out.
//!
//! Each stream is a raw TCP connection that sends one `GET PATH` and then
//! reads the (possibly chunked) event stream, looking at `data:` lines that
//! carry `"seq":N` and `"t_ns":T` (the sender's unix time in ns when it
//! produced the event). After all streams are open (or CONNECT_TIMEOUT has
//! passed) a measurement window of DURATION seconds starts; events received
//! inside it count towards events/s, and (receive time - t_ns) gives the
//! fan-out latency distribution.
//!
//! Usage:
//!   sse-fanout --addr 127.0.0.1:8080 [--path /demo/ticker] [--conns 10000]
//!              [--duration 10] [--threads <cores>] [--connect-concurrency 256]
//!              [--connect-timeout 60] [--interval-ms 100]
//!
//! `--interval-ms` is the server's ticker interval; with it the tool reports
//! the expected event rate and how much of it was delivered.
//!
//! The last line of output is machine-readable: `RESULT key=value ...`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

#[derive(Clone)]
struct Args {
    addr: String,
    path: String,
    conns: usize,
    duration: f64,
    threads: usize,
    connect_concurrency: usize,
    connect_timeout: f64,
    interval_ms: Option<f64>,
    server_pid: Option<u32>,
}

fn usage() -> ! {
    eprintln!(
        "usage: sse-fanout --addr HOST:PORT [--path /demo/ticker] [--conns 10000] \
         [--duration 10] [--threads N] [--connect-concurrency 256] [--connect-timeout 60] \
         [--interval-ms MS] [--server-pid PID]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut a = Args {
        addr: String::new(),
        path: "/demo/ticker".into(),
        conns: 10_000,
        duration: 10.0,
        threads: cores,
        connect_concurrency: 256,
        connect_timeout: 60.0,
        interval_ms: None,
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--addr" => a.addr = v(),
            "--path" => a.path = v(),
            "--conns" => a.conns = v().parse().unwrap_or_else(|_| usage()),
            "--duration" => a.duration = v().parse().unwrap_or_else(|_| usage()),
            "--threads" => a.threads = v().parse().unwrap_or_else(|_| usage()),
            "--connect-concurrency" => {
                a.connect_concurrency = v().parse().unwrap_or_else(|_| usage())
            }
            "--connect-timeout" => a.connect_timeout = v().parse().unwrap_or_else(|_| usage()),
            "--interval-ms" => a.interval_ms = Some(v().parse().unwrap_or_else(|_| usage())),
            "--server-pid" => a.server_pid = Some(v().parse().unwrap_or_else(|_| usage())),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if a.addr.is_empty() {
        usage()
    }
    a.threads = a.threads.max(1);
    a.connect_concurrency = a.connect_concurrency.max(1);
    a
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn raise_nofile() -> u64 {
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
            return r.rlim_cur;
        }
    }
    0
}

/// CPU time (user + system) of this process, in seconds.
fn self_cpu_secs() -> f64 {
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

fn clk_tck() -> f64 {
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime+stime of a process in seconds, from /proc/PID/stat.
fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clk_tck())
}

fn proc_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Shared window: 0 = not started yet.
struct Window {
    start_ns: AtomicU64,
    end_ns: AtomicU64,
    connected: AtomicUsize,
    connect_failed: AtomicUsize,
}

#[derive(Default)]
struct ConnStats {
    connected: bool,
    events: u64,
    lat_ns: Vec<u64>,
    negative: u64,
    missed: u64,
    closed_in_window: bool,
    error: Option<String>,
    /// (seq, t_ns) of the first and last event seen in the window.
    first: Option<(u64, u64)>,
    last: Option<(u64, u64)>,
}

enum Chunk {
    Size,
    Data(usize),
    Crlf,
}

/// Decode as much chunked framing from `raw` as possible into `out`.
/// Returns Ok(true) on the terminating zero-size chunk.
fn dechunk(raw: &mut Vec<u8>, st: &mut Chunk, out: &mut Vec<u8>) -> Result<bool, String> {
    let mut pos = 0;
    let mut eof = false;
    loop {
        match st {
            Chunk::Size => {
                let Some(i) = raw[pos..].windows(2).position(|w| w == b"\r\n") else { break };
                let line = &raw[pos..pos + i];
                let hex = line.split(|&b| b == b';').next().unwrap_or(b"");
                let hex = std::str::from_utf8(hex).map_err(|_| "bad chunk size")?.trim();
                let n = usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size {hex:?}"))?;
                pos += i + 2;
                if n == 0 {
                    eof = true;
                    break;
                }
                *st = Chunk::Data(n);
            }
            Chunk::Data(n) => {
                let take = (*n).min(raw.len() - pos);
                out.extend_from_slice(&raw[pos..pos + take]);
                pos += take;
                *n -= take;
                if *n == 0 {
                    *st = Chunk::Crlf;
                } else {
                    break;
                }
            }
            Chunk::Crlf => {
                if raw.len() - pos < 2 {
                    break;
                }
                pos += 2;
                *st = Chunk::Size;
            }
        }
    }
    raw.drain(..pos);
    Ok(eof)
}

fn find_u64(line: &[u8], key: &[u8]) -> Option<u64> {
    let i = line.windows(key.len()).position(|w| w == key)? + key.len();
    let mut v: u64 = 0;
    let mut any = false;
    for &b in &line[i..] {
        if b.is_ascii_digit() {
            v = v.wrapping_mul(10).wrapping_add((b - b'0') as u64);
            any = true;
        } else if b == b' ' && !any {
            continue;
        } else {
            break;
        }
    }
    any.then_some(v)
}

async fn one_stream(args: Arc<Args>, win: Arc<Window>, sem: Arc<Semaphore>) -> ConnStats {
    let mut st = ConnStats::default();
    // --- connect + request + response head, limited concurrency ---
    let permit = sem.acquire_owned().await.expect("semaphore");
    let mut stream = None;
    for attempt in 0..5 {
        match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&args.addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => st.error = Some(format!("connect: {e}")),
            Err(_) => st.error = Some("connect: timeout".into()),
        }
        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
    }
    let Some(mut s) = stream else {
        win.connect_failed.fetch_add(1, Ordering::Relaxed);
        return st;
    };
    let _ = s.set_nodelay(true);
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
        args.path, args.addr
    );
    if let Err(e) = s.write_all(req.as_bytes()).await {
        st.error = Some(format!("write: {e}"));
        win.connect_failed.fetch_add(1, Ordering::Relaxed);
        return st;
    }
    let mut raw: Vec<u8> = Vec::with_capacity(4096);
    let mut buf = vec![0u8; 16 * 1024];
    let head_end;
    loop {
        let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
        match r {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {
                st.error = Some("no response head".into());
                win.connect_failed.fetch_add(1, Ordering::Relaxed);
                return st;
            }
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
        }
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            head_end = i + 4;
            break;
        }
        if raw.len() > 64 * 1024 {
            st.error = Some("response head too large".into());
            win.connect_failed.fetch_add(1, Ordering::Relaxed);
            return st;
        }
    }
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") && !head.starts_with("http/1.0 200") {
        st.error = Some(format!("status: {}", head.lines().next().unwrap_or("")));
        win.connect_failed.fetch_add(1, Ordering::Relaxed);
        return st;
    }
    let chunked = head.lines().any(|l| {
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    raw.drain(..head_end);
    drop(permit);
    st.connected = true;
    win.connected.fetch_add(1, Ordering::Relaxed);

    // --- event loop ---
    let mut cstate = Chunk::Size;
    let mut body: Vec<u8> = Vec::with_capacity(1024);
    let mut last_seq: Option<u64> = None;
    loop {
        let end = win.end_ns.load(Ordering::Acquire);
        if end != 0 && now_ns() >= end {
            break;
        }
        // Process what we have.
        let eof = if chunked {
            match dechunk(&mut raw, &mut cstate, &mut body) {
                Ok(e) => e,
                Err(e) => {
                    st.error = Some(e);
                    true
                }
            }
        } else {
            body.extend_from_slice(&raw);
            raw.clear();
            false
        };
        let t_recv = now_ns();
        let start = win.start_ns.load(Ordering::Acquire);
        let in_window = start != 0 && t_recv >= start && (end == 0 || t_recv < end);
        let mut consumed = 0;
        while let Some(i) = body[consumed..].iter().position(|&b| b == b'\n') {
            let line = &body[consumed..consumed + i];
            consumed += i + 1;
            if !line.starts_with(b"data:") {
                continue;
            }
            let seq = find_u64(line, b"\"seq\":");
            if let (Some(seq), Some(prev)) = (seq, last_seq) {
                if seq > prev + 1 && in_window {
                    st.missed += seq - prev - 1;
                }
            }
            if seq.is_some() {
                last_seq = seq;
            }
            if in_window {
                st.events += 1;
                if let Some(t) = find_u64(line, b"\"t_ns\":") {
                    if let Some(q) = seq {
                        if st.first.is_none() {
                            st.first = Some((q, t));
                        }
                        st.last = Some((q, t));
                    }
                    if t_recv >= t {
                        st.lat_ns.push(t_recv - t);
                    } else {
                        st.negative += 1;
                        st.lat_ns.push(0);
                    }
                }
            }
        }
        body.drain(..consumed);
        if eof {
            if start != 0 {
                st.closed_in_window = true;
            }
            break;
        }
        // Read more, waking up regularly to notice the end of the window.
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) => {
                if win.start_ns.load(Ordering::Acquire) != 0 {
                    st.closed_in_window = true;
                }
                st.error.get_or_insert_with(|| "closed by server".into());
                break;
            }
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => {
                if win.start_ns.load(Ordering::Acquire) != 0 {
                    st.closed_in_window = true;
                }
                st.error.get_or_insert_with(|| format!("read: {e}"));
                break;
            }
        }
    }
    st
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1e6
}

fn main() {
    let args = Arc::new(parse_args());
    let nofile = raise_nofile();
    if (nofile as usize) < args.conns + 64 {
        eprintln!(
            "warning: RLIMIT_NOFILE is {nofile}, below --conns {} (+64); run `ulimit -n 65536` first",
            args.conns
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(args));
}

async fn run(args: Arc<Args>) {
    let win = Arc::new(Window {
        start_ns: AtomicU64::new(0),
        end_ns: AtomicU64::new(0),
        connected: AtomicUsize::new(0),
        connect_failed: AtomicUsize::new(0),
    });
    let sem = Arc::new(Semaphore::new(args.connect_concurrency));
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(args.conns);
    for _ in 0..args.conns {
        handles.push(tokio::spawn(one_stream(args.clone(), win.clone(), sem.clone())));
    }
    // Wait for all streams to be open (or failed), bounded by connect_timeout.
    let deadline = t0 + Duration::from_secs_f64(args.connect_timeout);
    loop {
        let c = win.connected.load(Ordering::Relaxed);
        let f = win.connect_failed.load(Ordering::Relaxed);
        if c + f >= args.conns || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected = win.connected.load(Ordering::Relaxed);
    let failed = win.connect_failed.load(Ordering::Relaxed);
    let connect_secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "sse-fanout: {connected}/{} streams open ({failed} failed) after {connect_secs:.2}s; \
         measuring for {}s with {} client threads",
        args.conns, args.duration, args.threads
    );
    // Let one interval pass so every stream has settled, then open the window.
    tokio::time::sleep(Duration::from_millis(
        args.interval_ms.map(|m| m as u64).unwrap_or(200).clamp(50, 2000),
    ))
    .await;
    let cpu0 = self_cpu_secs();
    let srv0 = args.server_pid.and_then(proc_cpu_secs);
    let start = now_ns();
    let end = start + (args.duration * 1e9) as u64;
    win.end_ns.store(end, Ordering::Release);
    win.start_ns.store(start, Ordering::Release);
    let wall0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let cpu1 = self_cpu_secs();
    let srv1 = args.server_pid.and_then(proc_cpu_secs);
    let srv_rss = args.server_pid.and_then(proc_rss_kib);
    let window = wall0.elapsed().as_secs_f64();

    // Collect (each task notices the end within ~200 ms).
    let mut lat: Vec<u64> = Vec::new();
    let (mut events, mut missed, mut negative, mut closed) = (0u64, 0u64, 0u64, 0usize);
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    // Earliest and latest (seq, t_ns) seen anywhere: the producer's real rate.
    let (mut gfirst, mut glast): (Option<(u64, u64)>, Option<(u64, u64)>) = (None, None);
    let collect_deadline = Instant::now() + Duration::from_secs(10);
    for h in handles {
        let left = collect_deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left.max(Duration::from_millis(1)), h).await {
            Ok(Ok(st)) => {
                events += st.events;
                missed += st.missed;
                negative += st.negative;
                if st.closed_in_window {
                    closed += 1;
                }
                if let Some(e) = st.error {
                    let key = e.split(':').next().unwrap_or("").to_string();
                    let key = if key.is_empty() { e } else { key };
                    *errors.entry(key).or_default() += 1;
                }
                lat.extend_from_slice(&st.lat_ns);
                if let Some(f) = st.first {
                    if gfirst.map(|g| f.0 < g.0).unwrap_or(true) {
                        gfirst = Some(f);
                    }
                }
                if let Some(l) = st.last {
                    if glast.map(|g| l.0 > g.0).unwrap_or(true) {
                        glast = Some(l);
                    }
                }
            }
            Ok(Err(_)) => *errors.entry("task panicked".into()).or_default() += 1,
            Err(_) => *errors.entry("task did not finish".into()).or_default() += 1,
        }
    }
    lat.sort_unstable();
    let eps = events as f64 / window;
    let (p50, p90, p99, p999, max) = (
        pct(&lat, 50.0),
        pct(&lat, 90.0),
        pct(&lat, 99.0),
        pct(&lat, 99.9),
        lat.last().map(|&v| v as f64 / 1e6).unwrap_or(f64::NAN),
    );
    let cpu_util = (cpu1 - cpu0) / (window * args.threads as f64);
    // Events/s the server's producer actually made (from seq numbers and
    // their t_ns), and the share of (streams x events produced) that arrived.
    let producer_hz = match (gfirst, glast) {
        (Some(f), Some(l)) if l.0 > f.0 && l.1 > f.1 => {
            Some((l.0 - f.0) as f64 / ((l.1 - f.1) as f64 / 1e9))
        }
        _ => None,
    };
    let completeness = producer_hz
        .map(|hz| events as f64 / (connected as f64 * hz * window))
        .filter(|c| c.is_finite());
    let expected = args.interval_ms.map(|ms| connected as f64 * 1000.0 / ms);
    let delivered = expected.map(|e| if e > 0.0 { eps / e } else { f64::NAN });
    // The client is the likely bottleneck when it burned (nearly) all the CPU
    // it had while the server did not deliver the full rate.
    let client_bound = cpu_util > 0.85 && delivered.map(|d| d < 0.98).unwrap_or(true);
    let srv_cores = match (srv0, srv1) {
        (Some(a), Some(b)) => Some((b - a) / window),
        _ => None,
    };
    // What limited the delivered rate?
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let client_cores = (cpu1 - cpu0) / window;
    let limit = if delivered.map(|d| d >= 0.98).unwrap_or(false) {
        "none"
    } else if missed == 0 && closed == 0 && completeness.map(|c| c >= 0.98).unwrap_or(false) {
        // Every stream got every event that was produced: the producer
        // itself ticked slower than --interval-ms.
        "producer"
    } else if client_bound {
        "client"
    } else if client_cores + srv_cores.unwrap_or(0.0) >= 0.9 * cores {
        "machine"
    } else {
        "server"
    };

    println!("streams open:       {connected}/{} ({failed} failed to open)", args.conns);
    println!("window:             {window:.2} s");
    println!("events received:    {events} ({eps:.0} events/s)");
    if let (Some(e), Some(d)) = (expected, delivered) {
        println!("expected:           {e:.0} events/s -> delivered {:.1}%", d * 100.0);
    }
    println!("missed (seq gaps):  {missed}");
    if let Some(hz) = producer_hz {
        println!(
            "producer rate:      {hz:.2} events/s per stream (from seq/t_ns); {:.1}% of streams x produced events arrived",
            completeness.unwrap_or(f64::NAN) * 100.0
        );
    }
    println!(
        "rate limited by:    {limit}{}",
        match limit {
            "none" => " (full expected rate delivered)",
            "client" => " (this client used ~all of its threads: a lower bound for the server)",
            "machine" => " (client + server used ~all cores of this machine: they share it)",
            "server" => " (server did not keep up while CPU was left)",
            "producer" => " (every stream got every event produced, but the server's ticker ran slower than --interval-ms)",
            _ => "",
        }
    );
    println!("streams closed in window: {closed}");
    println!(
        "fan-out latency ms: p50 {p50:.3}  p90 {p90:.3}  p99 {p99:.3}  p99.9 {p999:.3}  max {max:.3}"
    );
    if negative > 0 {
        println!("note: {negative} events had t_ns in the future (clock skew?) and count as 0 ms");
    }
    println!(
        "client CPU:         {:.2} s over {window:.2} s on {} threads = {:.0}% of its threads{}",
        cpu1 - cpu0,
        args.threads,
        cpu_util * 100.0,
        if client_bound { "  <-- CLIENT WAS LIKELY THE BOTTLENECK" } else { "" }
    );
    if let Some(c) = srv_cores {
        println!(
            "server CPU:         {c:.2} cores; RSS {:.1} MiB",
            srv_rss.unwrap_or(0) as f64 / 1024.0
        );
    }
    for (k, v) in &errors {
        println!("stream end/error:   {v} x {k}");
    }
    println!(
        "RESULT conns={} connected={connected} failed={failed} window_s={window:.3} events={events} \
         events_per_s={eps:.1} expected_per_s={} delivered_pct={} missed={missed} closed={closed} \
         p50_ms={p50:.3} p90_ms={p90:.3} p99_ms={p99:.3} p999_ms={p999:.3} max_ms={max:.3} \
         client_cpu_pct={:.1} client_cores={:.2} client_bound={} server_cores={} server_rss_kib={} limit={limit} producer_hz={} completeness_pct={}",
        args.conns,
        expected.map(|e| format!("{e:.1}")).unwrap_or_else(|| "na".into()),
        delivered.map(|d| format!("{:.1}", d * 100.0)).unwrap_or_else(|| "na".into()),
        cpu_util * 100.0,
        client_cores,
        if client_bound { 1 } else { 0 },
        srv_cores.map(|c| format!("{c:.2}")).unwrap_or_else(|| "na".into()),
        srv_rss.map(|r| r.to_string()).unwrap_or_else(|| "na".into()),
        producer_hz.map(|h| format!("{h:.3}")).unwrap_or_else(|| "na".into()),
        completeness.map(|c| format!("{:.1}", c * 100.0)).unwrap_or_else(|| "na".into()),
    );
}
