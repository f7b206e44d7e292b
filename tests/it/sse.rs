//! SSE: ordered push from other threads, heartbeats, slow consumers, vanished clients.

use crate::support::*;
use conduit::http::{Cx, Method, Mode, Reply, Request, SseSender};
use std::io::Read;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn stream_head(r: &mut Reader, path: &str) -> RawResponse {
    r.send(&get(path));
    let head = r.response_to("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header("cache-control"), Some("no-cache"));
    assert_eq!(head.header("x-accel-buffering"), Some("no"));
    assert!(
        head.header("content-length").is_none(),
        "R1: never both CL and TE"
    );
    head
}

#[test]
fn events_pushed_from_another_thread_arrive_in_order_then_the_connection_is_reused() {
    let srv = spawn_server_with(test_config(), |r| {
        r.route(
            Method::Get,
            "/count",
            Mode::Inline,
            |_: &mut Request, cx: &mut Cx<'_>| {
                let (stream, tx) = cx.sse();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        tx.send_data(&format!("event {i}\nsecond line")).unwrap();
                    }
                    // Dropping the last sender ends the stream cleanly.
                });
                Reply::Sse(stream)
            },
        );
    });
    let mut r = Reader::new(connect(srv.addr));
    stream_head(&mut r, "/count");
    assert_eq!(r.read_chunk().unwrap(), b"retry: 3000\n\n");
    let mut body = Vec::new();
    while let Some(chunk) = r.read_chunk() {
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body).unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 200);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(*e, format!("data: event {i}\ndata: second line"));
    }
    // The stream ended with the last chunk; the connection serves the next request.
    r.send(&get("/plaintext"));
    assert_eq!(r.response().body_str(), "Hello, World!");
}

#[test]
fn idle_stream_gets_heartbeat_comments() {
    let mut cfg = test_config();
    cfg.http.sse_heartbeat = Duration::from_millis(100);
    let keep: Arc<Mutex<Vec<SseSender>>> = Arc::default();
    let k = keep.clone();
    let srv = spawn_server_with(cfg, move |r| {
        r.route(
            Method::Get,
            "/quiet",
            Mode::Inline,
            move |_: &mut Request, cx: &mut Cx<'_>| {
                let (stream, tx) = cx.sse();
                k.lock().unwrap().push(tx);
                Reply::Sse(stream)
            },
        );
    });
    let mut r = Reader::new(connect(srv.addr));
    stream_head(&mut r, "/quiet");
    assert_eq!(r.read_chunk().unwrap(), b"retry: 3000\n\n");
    for _ in 0..3 {
        assert_eq!(r.read_chunk().unwrap(), b": keepalive\n\n");
    }
    drop(keep);
}

#[test]
fn vanished_client_is_noticed_by_the_producer() {
    let (seen_tx, seen_rx) = mpsc::channel::<()>();
    let seen_tx = Mutex::new(seen_tx);
    let srv = spawn_server_with(test_config(), move |r| {
        r.route(
            Method::Get,
            "/watch",
            Mode::Inline,
            move |_: &mut Request, cx: &mut Cx<'_>| {
                let (stream, tx) = cx.sse();
                let seen = seen_tx.lock().unwrap().clone();
                std::thread::spawn(move || {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_secs(20) {
                        if tx.send_data("tick").is_err() || tx.is_closed() {
                            let _ = seen.send(());
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                });
                Reply::Sse(stream)
            },
        );
    });
    let mut r = Reader::new(connect(srv.addr));
    stream_head(&mut r, "/watch");
    r.read_chunk().unwrap();
    drop(r);
    seen_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("producer saw the client go away");
}

#[test]
fn slow_consumer_is_cut_off_and_others_carry_on() {
    let mut cfg = test_config();
    cfg.server.max_write_backlog_bytes = 64 * 1024;
    let (done_tx, done_rx) = mpsc::channel::<usize>();
    let done_tx = Mutex::new(done_tx);
    let srv = spawn_server_with(cfg, move |r| {
        r.route(
            Method::Get,
            "/flood",
            Mode::Inline,
            move |_: &mut Request, cx: &mut Cx<'_>| {
                let (stream, tx) = cx.sse();
                let done = done_tx.lock().unwrap().clone();
                std::thread::spawn(move || {
                    let payload = "x".repeat(1024);
                    let mut sent = 0;
                    // 1 GiB at most: far more than any socket buffer plus the backlog cap.
                    while sent < 1 << 20 {
                        if tx.send_data(&payload).is_err() {
                            break;
                        }
                        sent += 1;
                    }
                    let _ = done.send(sent);
                });
                Reply::Sse(stream)
            },
        );
    });
    let mut slow = connect(srv.addr);
    std::io::Write::write_all(&mut slow, &get("/flood")).unwrap();
    // Never read: the producer must be stopped, not buffered without bound.
    let sent = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("producer was stopped");
    assert!(sent < 1 << 20, "stream was cut off after {sent} events");
    let (resp, _) = exchange(srv.addr, &get("/plaintext"));
    assert_eq!(resp.status, 200);
    // The slow connection is closed by the server.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    loop {
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => {
                panic!("expected the server to close the slow stream: {e} after {total} bytes")
            }
        }
    }
}

#[test]
fn responder_can_start_a_stream_from_the_worker_pool() {
    let srv = spawn_server_with(test_config(), |r| {
        r.route(
            Method::Get,
            "/later",
            Mode::Pool,
            |_: &mut Request, cx: &mut Cx<'_>| {
                let responder = cx.responder();
                std::thread::spawn(move || {
                    let head = conduit::http::Response::new(200).header("X-Stream", "yes");
                    let tx = responder.sse(head).unwrap();
                    tx.send_data("one").unwrap();
                    tx.send_data("two").unwrap();
                });
                Reply::Later
            },
        );
    });
    let mut r = Reader::new(connect(srv.addr));
    let head = stream_head(&mut r, "/later");
    assert_eq!(head.header("x-stream"), Some("yes"));
    assert_eq!(r.read_chunk().unwrap(), b"retry: 3000\n\n");
    assert_eq!(r.read_chunk().unwrap(), b"data: one\n\n");
    assert_eq!(r.read_chunk().unwrap(), b"data: two\n\n");
    assert_eq!(r.read_chunk(), None);
}

#[test]
fn head_on_a_stream_route_gets_the_head_only_and_the_connection_is_reused() {
    // See: #13 (1). A HEAD that streamed a body made the next request on
    // the connection part of it.
    let mut cfg = test_config();
    // No tick during the test: a wrongly streamed body ends at its first chunk.
    cfg.demo.ticker_interval_ms = 60_000;
    let srv = spawn_server(cfg);
    let mut r = Reader::new(connect(srv.addr));
    r.send(b"HEAD /demo/ticker HTTP/1.1\r\nHost: localhost\r\n\r\nGET /json HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let head = r.response_to("HEAD");
    assert_eq!(head.status, 200, "{:?}", head.head);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert!(!head.closes(), "{:?}", head.head);
    let next = r.response();
    assert_eq!(next.status, 200, "{:?}", next.head);
    assert_eq!(next.body_str(), r#"{"message":"Hello, World!"}"#);
    // Nothing else follows: no event or chunk of the HEAD's stream.
    assert!(
        !r.poll_for(Duration::from_millis(300)),
        "{:?}",
        r.leftover()
    );
}
