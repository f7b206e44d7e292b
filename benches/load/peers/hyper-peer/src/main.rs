//! hyper-peer: a comparison server for Conduit's load benchmarks.
//!
//! Usage: hyper-peer ADDR [THREADS]
//!
//! * `GET /plaintext` -> 200 `Hello, World!` (text/plain)
//! * `GET /json`      -> 200 `{"message":"Hello, World!"}` (application/json,
//!   serialized per request with serde_json)
//! * `GET /demo/ticker` -> SSE stream; one global producer task sends
//!   `data: {"seq":N,"t_ns":T}\n\n` every TICKER_INTERVAL_MS (default 1000)
//!   to every subscriber through a `tokio::sync::broadcast` channel.
//!   A subscriber that lags behind the channel's capacity is disconnected.
//!
//! Every response carries `Server` and `Date` (TechEmpower rules). The
//! runtime is tokio's multi-thread runtime with THREADS workers (default:
//! number of cores).

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, DATE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type SseStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<Frame<Bytes>, BoxError>> + Send>,
>;
type Body = Either<Full<Bytes>, StreamBody<SseStream>>;

static HELLO: &[u8] = b"Hello, World!";

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

thread_local! {
    // (unix second the value was formatted for, formatted value)
    static DATE_CACHE: RefCell<(u64, HeaderValue)> =
        RefCell::new((0, HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT")));
}

/// RFC 7231 date, re-formatted at most once per second per thread.
fn date_header() -> HeaderValue {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    DATE_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let s = httpdate::fmt_http_date(now);
            c.1 = HeaderValue::from_str(&s).expect("valid date");
            c.0 = secs;
        }
        c.1.clone()
    })
}

fn response(status: StatusCode, ctype: &'static str, body: Body) -> Response<Body> {
    let mut rsp = Response::new(body);
    *rsp.status_mut() = status;
    let h = rsp.headers_mut();
    h.insert(SERVER, HeaderValue::from_static("hyper"));
    h.insert(DATE, date_header());
    h.insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    rsp
}

fn full(b: impl Into<Bytes>) -> Body {
    Either::Left(Full::new(b.into()))
}

async fn handle(
    req: Request<Incoming>,
    ticker: broadcast::Sender<Bytes>,
) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(response(StatusCode::METHOD_NOT_ALLOWED, "text/plain", full("")));
    }
    Ok(match req.uri().path() {
        "/plaintext" => response(StatusCode::OK, "text/plain", full(Bytes::from_static(HELLO))),
        "/json" => {
            let body = serde_json::to_vec(&Message { message: "Hello, World!" })
                .expect("serialize");
            response(StatusCode::OK, "application/json", full(body))
        }
        "/demo/ticker" => {
            // Lagged -> Err -> hyper aborts the connection: lagging
            // subscribers are dropped rather than buffered.
            let stream = BroadcastStream::new(ticker.subscribe()).map(|r| match r {
                Ok(b) => Ok(Frame::data(b)),
                Err(e) => Err(Box::new(e) as BoxError),
            });
            let body: SseStream = Box::pin(stream);
            let mut rsp = response(StatusCode::OK, "text/event-stream", Either::Right(StreamBody::new(body)));
            rsp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            rsp
        }
        _ => response(StatusCode::NOT_FOUND, "text/plain", full("Not Found")),
    })
}

/// The single global producer: one event per interval to all subscribers.
async fn ticker_task(tx: broadcast::Sender<Bytes>, interval: Duration) {
    let mut iv = tokio::time::interval(interval);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    loop {
        iv.tick().await;
        seq += 1;
        if tx.receiver_count() == 0 {
            continue;
        }
        let t_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let ev = format!("data: {{\"seq\":{seq},\"t_ns\":{t_ns}}}\n\n");
        let _ = tx.send(Bytes::from(ev));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:18081".to_string())
        .parse()
        .expect("usage: hyper-peer ADDR [THREADS]");
    let threads: usize = match args.next() {
        Some(t) => t.parse().expect("THREADS must be a number"),
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };
    let interval_ms: u64 = std::env::var("TICKER_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let capacity: usize = std::env::var("TICKER_CAPACITY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (tx, _) = broadcast::channel::<Bytes>(capacity);
        tokio::spawn(ticker_task(tx.clone(), Duration::from_millis(interval_ms.max(1))));

        let listener = TcpListener::bind(addr).await.expect("bind");
        eprintln!(
            "hyper-peer listening on {addr} ({threads} worker threads, ticker {interval_ms} ms)"
        );
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    eprintln!("accept error: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let tx = tx.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(req, tx.clone()));
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .pipeline_flush(true)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}
