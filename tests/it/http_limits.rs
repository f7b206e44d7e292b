//! Limits and timeouts (SECURITY.md §1.2, L1–L12) over real sockets.
//!
//! Timeouts are shrunk in the config so the tests run fast; they assert that
//! the 408 or close happens, not its exact timing.

use crate::support::*;
use conduit::http::{Cx, Method, Mode, Reply, Request, Response};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_millis(300);

fn server() -> TestServer {
    spawn_test_server(test_config())
}

/// `GET <target> HTTP/1.1` whose request line (without CRLF) is `line_len` bytes.
fn request_with_line_len(line_len: usize) -> Vec<u8> {
    let fixed = "GET /".len() + " HTTP/1.1".len();
    let target = format!("/{}", "a".repeat(line_len - fixed));
    let line = format!("GET {target} HTTP/1.1");
    assert_eq!(line.len(), line_len);
    format!("{line}\r\nHost: localhost\r\n\r\n").into_bytes()
}

// ---------------------------------------------------------------- L1

#[test]
fn request_target_of_8k_plus_one_is_414_and_closes() {
    let srv = server();
    let target = format!("/{}", "a".repeat(8 * 1024));
    assert_eq!(target.len(), 8 * 1024 + 1);
    let raw = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_rejected(srv.addr, raw.as_bytes(), 414);
}

#[test]
fn request_line_one_byte_over_the_limit_is_414() {
    let srv = server();
    assert_rejected(srv.addr, &request_with_line_len(8 * 1024 + 1), 414);
}

#[test]
fn request_line_exactly_at_the_limit_is_accepted() {
    let srv = server();
    let resp = assert_accepted(srv.addr, &request_with_line_len(8 * 1024));
    assert_eq!(resp.status_line(), status_line(404));
}

#[test]
fn overlong_request_line_is_refused_before_it_ends() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    // No CRLF yet: the server must not wait for the end of the line.
    r.send(format!("GET /{}", "a".repeat(9000)).as_bytes());
    r.expect_error_close(414, "unterminated request line");
}

// ---------------------------------------------------------------- L2

#[test]
fn head_over_32k_is_431_and_closes() {
    let srv = server();
    let mut raw = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..40 {
        raw.push_str(&format!("X-Pad-{i}: {}\r\n", "p".repeat(1000)));
    }
    raw.push_str("\r\n");
    assert!(raw.len() > 32 * 1024);
    assert_rejected(srv.addr, raw.as_bytes(), 431);
}

#[test]
fn head_of_exactly_32k_is_accepted() {
    let srv = server();
    let start = "GET /seq?n=1 HTTP/1.1\r\nHost: localhost\r\n";
    let mut raw = String::from(start);
    // Fields of 4000 bytes each, then one that pads the head to exactly 32 KiB.
    let mut i = 0;
    while 32 * 1024 - (raw.len() + 2) > 4100 {
        raw.push_str(&format!("X-Pad-{i:02}: {}\r\n", "p".repeat(4000 - 10)));
        i += 1;
    }
    let remaining = 32 * 1024 - (raw.len() + 2);
    raw.push_str(&format!(
        "X-Last: {}\r\n",
        "q".repeat(remaining - "X-Last: \r\n".len())
    ));
    raw.push_str("\r\n");
    assert_eq!(raw.len(), 32 * 1024);
    let resp = assert_accepted(srv.addr, raw.as_bytes());
    assert_eq!(resp.status_line(), status_line(200));
}

#[test]
fn head_of_32k_plus_one_is_431() {
    let srv = server();
    let mut raw = String::from("GET /seq?n=1 HTTP/1.1\r\nHost: localhost\r\n");
    while 32 * 1024 + 1 - (raw.len() + 2) > 4100 {
        raw.push_str(&format!("X-Pad: {}\r\n", "p".repeat(4000)));
    }
    let remaining = 32 * 1024 + 1 - (raw.len() + 2);
    raw.push_str(&format!(
        "X-Last: {}\r\n",
        "q".repeat(remaining - "X-Last: \r\n".len())
    ));
    raw.push_str("\r\n");
    assert_eq!(raw.len(), 32 * 1024 + 1);
    assert_rejected(srv.addr, raw.as_bytes(), 431);
}

#[test]
fn one_header_field_over_8k_is_431_and_closes() {
    let srv = server();
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "b".repeat(8 * 1024)
    );
    assert_rejected(srv.addr, raw.as_bytes(), 431);
}

#[test]
fn one_header_field_of_exactly_8k_is_accepted() {
    let srv = server();
    let field = format!("X-Big: {}", "b".repeat(8 * 1024 - "X-Big: ".len()));
    assert_eq!(field.len(), 8 * 1024);
    let raw = format!("GET /seq?n=1 HTTP/1.1\r\nHost: localhost\r\n{field}\r\n\r\n");
    assert_eq!(assert_accepted(srv.addr, raw.as_bytes()).status, 200);
}

// ---------------------------------------------------------------- L3

fn request_with_fields(n: usize) -> Vec<u8> {
    let mut raw = String::from("GET /seq?n=1 HTTP/1.1\r\nHost: localhost\r\n");
    for i in 1..n {
        raw.push_str(&format!("X-F{i}: v\r\n"));
    }
    raw.push_str("\r\n");
    raw.into_bytes()
}

#[test]
fn header_field_101_is_431_and_closes() {
    let srv = server();
    assert_rejected(srv.addr, &request_with_fields(101), 431);
}

#[test]
fn exactly_100_header_fields_are_accepted() {
    let srv = server();
    assert_eq!(
        assert_accepted(srv.addr, &request_with_fields(100)).status,
        200
    );
}

// ---------------------------------------------------------------- L4

fn small_body_server() -> TestServer {
    let mut cfg = test_config();
    cfg.http.max_body_bytes = 1024;
    spawn_server_with(cfg, |r| {
        test_routes(r);
        r.route_with_limit(
            Method::Post,
            "/large",
            Mode::Inline,
            10_000,
            |req: &mut Request, _: &mut Cx<'_>| {
                Reply::Response(Response::text(200, req.take_body().len().to_string()))
            },
        )
        .route_with_limit(
            Method::Post,
            "/tiny",
            Mode::Inline,
            16,
            |req: &mut Request, _: &mut Cx<'_>| {
                Reply::Response(Response::text(200, req.take_body().len().to_string()))
            },
        );
    })
}

#[test]
fn content_length_over_cap_is_413_before_the_body_is_sent() {
    let srv = small_body_server();
    let mut r = Reader::new(connect(srv.addr));
    // Only the head: the 413 must come without the server waiting for the body.
    r.send(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1025\r\n\r\n");
    r.expect_error_close(413, "CL over cap");
}

#[test]
fn body_exactly_at_the_cap_is_accepted() {
    let srv = small_body_server();
    let resp = assert_accepted(srv.addr, &post("/echo", &[b'z'; 1024]));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), 1024);
}

#[test]
fn chunked_body_crossing_the_cap_is_413_and_closes() {
    let srv = small_body_server();
    let mut r = Reader::new(connect(srv.addr));
    let chunk = "a".repeat(600);
    r.send(&post_chunked("/echo", &format!("258\r\n{chunk}\r\n")));
    // The first chunk is within the cap; the server waits for more.
    assert!(
        !r.poll_for(Duration::from_millis(100)),
        "no response before the cap is crossed"
    );
    r.send(format!("258\r\n{chunk}\r\n").as_bytes());
    r.expect_error_close(413, "chunked body over cap");
}

#[test]
fn expect_continue_over_the_cap_is_413_without_100_continue() {
    let srv = small_body_server();
    let mut r = Reader::new(connect(srv.addr));
    r.send(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n");
    // The very first response must be the 413 (no interim 100 Continue).
    r.expect_error_close(413, "100-continue over cap");
}

#[test]
fn expect_continue_within_the_cap_gets_100_continue_then_the_response() {
    let srv = small_body_server();
    let mut r = Reader::new(connect(srv.addr));
    r.send(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = r.read_until(b"\r\n\r\n");
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    r.send(b"hello");
    let resp = r.response();
    assert_eq!(resp.status_line(), status_line(200));
    assert_eq!(resp.body_str(), "hello");
    assert!(!resp.closes());
}

#[test]
fn per_route_cap_can_raise_the_body_limit() {
    let srv = small_body_server();
    let resp = assert_accepted(srv.addr, &post("/large", &[b'z'; 5000]));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "5000");
    let raw = b"POST /large HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10001\r\n\r\n";
    assert_rejected(srv.addr, raw, 413);
}

#[test]
fn per_route_cap_can_lower_the_body_limit() {
    let srv = small_body_server();
    assert_eq!(
        assert_accepted(srv.addr, &post("/tiny", &[b'z'; 16])).body_str(),
        "16"
    );
    let mut r = Reader::new(connect(srv.addr));
    r.send(b"POST /tiny HTTP/1.1\r\nHost: localhost\r\nContent-Length: 17\r\n\r\n");
    r.expect_error_close(413, "route cap 16");
    let mut r = Reader::new(connect(srv.addr));
    r.send(&post_chunked("/tiny", "11\r\n"));
    r.expect_error_close(413, "chunked over route cap 16");
}

// ---------------------------------------------------------------- L5

#[test]
fn slowloris_head_trickle_is_408_and_closes() {
    let mut cfg = test_config();
    cfg.http.head_timeout = SHORT;
    let srv = spawn_test_server(cfg);
    let mut r = Reader::new(connect(srv.addr));
    r.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n");
    let start = Instant::now();
    let mut i = 0;
    // One header line every 50 ms; each new line must not extend the deadline.
    while !r.poll_for(Duration::from_millis(50)) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no 408 after {:?}",
            start.elapsed()
        );
        if !r.send_lossy(format!("X-Slow-{i}: a\r\n").as_bytes()) {
            break;
        }
        i += 1;
    }
    assert!(
        i >= 2,
        "the server answered before the head timeout ({i} lines)"
    );
    r.expect_error_close(408, "slowloris");
}

#[test]
fn partial_request_line_times_out_with_408() {
    let mut cfg = test_config();
    cfg.http.head_timeout = SHORT;
    let srv = spawn_test_server(cfg);
    let mut r = Reader::new(connect(srv.addr));
    r.send(b"GET /plain");
    r.expect_error_close(408, "partial request line");
}

// ---------------------------------------------------------------- L6

#[test]
fn stalled_body_is_408_and_closes() {
    let mut cfg = test_config();
    cfg.http.body_gap_timeout = SHORT;
    let srv = spawn_test_server(cfg);
    let mut r = Reader::new(connect(srv.addr));
    r.send(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789");
    r.expect_error_close(408, "stalled body");
}

#[test]
fn stalled_chunked_body_is_408_and_closes() {
    let mut cfg = test_config();
    cfg.http.body_gap_timeout = SHORT;
    let srv = spawn_test_server(cfg);
    let mut r = Reader::new(connect(srv.addr));
    r.send(&post_chunked("/echo", "5\r\nhello\r\n"));
    r.expect_error_close(408, "stalled chunked body");
}

#[test]
fn body_slower_than_min_rate_after_grace_is_408() {
    let mut cfg = test_config();
    cfg.http.body_rate_grace = SHORT;
    cfg.http.body_min_rate_bytes_per_sec = 1000;
    cfg.http.body_gap_timeout = Duration::from_secs(30);
    let srv = spawn_test_server(cfg);
    let mut r = Reader::new(connect(srv.addr));
    r.send(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n");
    let start = Instant::now();
    let mut sent = 0;
    // One byte every 20 ms (~50 B/s): never stalls, but far below 1000 B/s.
    while !r.poll_for(Duration::from_millis(20)) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no 408 after {:?}",
            start.elapsed()
        );
        if !r.send_lossy(b"x") {
            break;
        }
        sent += 1;
    }
    assert!(sent >= 2, "answered before the body started ({sent} bytes)");
    r.expect_error_close(408, "slow body");
}

// ---------------------------------------------------------------- L7

#[test]
fn idle_keep_alive_connection_is_closed_without_response_bytes() {
    let mut cfg = test_config();
    cfg.http.keep_alive_timeout = SHORT;
    let srv = spawn_test_server(cfg);
    let mut r = Reader::new(connect(srv.addr));
    r.send(&get("/seq?n=1"));
    assert_eq!(r.response().status, 200);
    let extra = r.read_to_close();
    assert!(
        extra.is_empty(),
        "idle close must send nothing: {:?}",
        String::from_utf8_lossy(&extra)
    );
}

#[test]
fn connection_that_never_sends_is_closed_without_response_bytes() {
    let mut cfg = test_config();
    cfg.http.keep_alive_timeout = SHORT;
    let srv = spawn_test_server(cfg);
    let mut r = Reader::new(connect(srv.addr));
    let extra = r.read_to_close();
    assert!(
        extra.is_empty(),
        "idle close must send nothing: {:?}",
        String::from_utf8_lossy(&extra)
    );
}

// ---------------------------------------------------------------- L8

#[test]
fn last_allowed_request_on_a_connection_says_close_then_closes() {
    let mut cfg = test_config();
    cfg.http.max_requests_per_conn = 5;
    let srv = spawn_test_server(cfg);
    let mut r = Reader::new(connect(srv.addr));
    for i in 1..=4 {
        r.send(&get(&format!("/seq?n={i}")));
        let resp = r.response();
        assert_eq!(resp.body_str(), i.to_string());
        assert!(!resp.closes(), "response {i} must keep the connection open");
    }
    r.send(&get("/seq?n=5"));
    let resp = r.response();
    assert_eq!(resp.status_line(), status_line(200));
    assert_eq!(resp.body_str(), "5");
    assert!(
        resp.closes(),
        "5th response must say Connection: close: {:?}",
        resp.head
    );
    assert!(r.closed());
}

#[test]
fn pipelined_requests_past_the_per_connection_limit_are_not_answered() {
    let mut cfg = test_config();
    cfg.http.max_requests_per_conn = 5;
    let srv = spawn_test_server(cfg);
    let mut r = Reader::new(connect(srv.addr));
    let burst: Vec<u8> = (1..=8).flat_map(|i| get(&format!("/seq?n={i}"))).collect();
    r.send(&burst);
    for i in 1..=5 {
        let resp = r.response();
        assert_eq!(resp.body_str(), i.to_string());
        assert_eq!(resp.closes(), i == 5);
    }
    let extra = r.read_to_close();
    assert!(
        extra.is_empty(),
        "nothing after the last response: {:?}",
        String::from_utf8_lossy(&extra)
    );
}

// ---------------------------------------------------------------- L9

#[test]
fn sixteen_pipelined_gets_are_answered_in_order() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    let burst: Vec<u8> = (0..16).flat_map(|i| get(&format!("/seq?n={i}"))).collect();
    r.send(&burst);
    for i in 0..16 {
        let resp = r.response();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body_str(), i.to_string());
    }
}

#[test]
fn pipelined_mix_of_inline_pool_and_error_routes_keeps_order() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    let mut burst = Vec::new();
    burst.extend(get("/demo/sleep?ms=50")); // pool, slow
    burst.extend(get("/plaintext"));
    burst.extend(b"HEAD /json HTTP/1.1\r\nHost: localhost\r\n\r\n");
    burst.extend(get("/nope")); // 404
    burst.extend(post("/echo", b"body!"));
    burst.extend(get("/demo/sleep?ms=1"));
    burst.extend(b"DELETE /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n"); // 405
    burst.extend(get("/seq?n=7"));
    r.send(&burst);
    let resp = r.response();
    assert_eq!(
        (resp.status, resp.body_str().as_str()),
        (200, "slept 50 ms\n")
    );
    assert_eq!(r.response().body_str(), "Hello, World!");
    let head = r.response_to("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert_eq!(r.response().status, 404);
    assert_eq!(r.response().body_str(), "body!");
    assert_eq!(r.response().body_str(), "slept 1 ms\n");
    let not_allowed = r.response();
    assert_eq!(not_allowed.status, 405);
    assert!(not_allowed
        .header("allow")
        .is_some_and(|a| a.contains("GET")));
    assert_eq!(r.response().body_str(), "7");
}

#[test]
fn pipelined_burst_of_40k_gets_every_response() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    // A slow pool request first, so the burst queues up while the loop waits.
    let mut burst = get("/demo/sleep?ms=20");
    let mut n = 0;
    while burst.len() < 40 * 1024 {
        burst.extend(get(&format!("/seq?n={n}")));
        n += 1;
    }
    r.send(&burst);
    assert_eq!(r.response().body_str(), "slept 20 ms\n");
    for i in 0..n {
        let resp = r.response();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body_str(), i.to_string());
    }
    // Still usable afterwards.
    r.send(&get("/seq?n=end"));
    assert_eq!(r.response().body_str(), "end");
}

// ---------------------------------------------------------------- L10

#[test]
fn connection_over_max_connections_waits_while_every_slot_is_busy() {
    let mut cfg = test_config();
    cfg.server.max_connections = 2;
    let srv = spawn_test_server(cfg);
    let mut a = Reader::new(connect(srv.addr));
    let mut b = Reader::new(connect(srv.addr));
    a.send(&get("/demo/sleep?ms=800"));
    b.send(&get("/demo/sleep?ms=800"));

    // The third connection completes the TCP handshake (kernel backlog) but
    // is not served while both slots are busy.
    let mut c = Reader::new(connect(srv.addr));
    c.send(&get("/seq?n=3"));
    assert!(
        !c.poll_for(Duration::from_millis(300)),
        "third connection served above max_connections"
    );
    assert_eq!(a.response().status, 200);
    assert_eq!(b.response().status, 200);
    // Once a slot is idle, the oldest idle connection makes room for it.
    let resp = c.response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "3");
}

#[test]
fn idle_sockets_at_the_connection_cap_make_room_for_new_clients() {
    // See: #13 (7). Sockets that send nothing, or an unfinished head, held
    // every slot until their timeouts; a real client waited that long.
    let mut cfg = test_config();
    cfg.server.max_connections = 20;
    let srv = spawn_test_server(cfg);
    let mut keep = Reader::new(connect(srv.addr));
    keep.send(&get("/seq?n=0"));
    assert_eq!(keep.response().body_str(), "0");
    let mut attackers = Vec::new();
    for i in 0..60 {
        let mut s = connect(srv.addr);
        if i % 2 == 0 {
            s.write_all(b"GET /json HTTP/1.1\r\nHost: local").unwrap();
        }
        attackers.push(s);
    }
    let start = Instant::now();
    let mut r = Reader::new(connect(srv.addr));
    r.stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    r.send(&get("/seq?n=1"));
    let resp = r.response();
    assert_eq!(resp.body_str(), "1");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // Closed idle connections were closed, not answered.
    assert!(Reader::new(attackers.remove(1)).closed());
}

#[test]
fn bodies_slower_than_the_minimum_rate_make_room_at_the_connection_cap() {
    // See: #13 (7, 12): 1,500 slow-body clients (slowhttptest -B) past the
    // cap made new clients wait for the body rate checks.
    let mut cfg = test_config();
    cfg.server.max_connections = 10;
    let srv = spawn_test_server(cfg);
    let mut slow = Vec::new();
    for _ in 0..12 {
        let mut s = connect(srv.addr);
        s.write_all(
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n0123456789",
        )
        .unwrap();
        slow.push(s);
    }
    // Time is the scenario here: a rate is judged after a second.
    std::thread::sleep(Duration::from_millis(1200));
    let start = Instant::now();
    let mut r = Reader::new(connect(srv.addr));
    r.stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    r.send(&get("/seq?n=1"));
    assert_eq!(r.response().body_str(), "1");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn sse_streams_take_at_most_their_share_of_the_connection_cap() {
    // See: #13 (7). 300 streams held every slot of 200 for good.
    let mut cfg = test_config();
    cfg.server.max_connections = 20;
    cfg.demo.ticker_interval_ms = 60_000;
    let srv = spawn_test_server(cfg);
    let (mut open, mut refused) = (Vec::new(), 0);
    for _ in 0..15 {
        let mut r = Reader::new(connect(srv.addr));
        r.send(&get("/demo/ticker"));
        let head = r.response_to("HEAD");
        match head.status {
            200 => open.push(r),
            503 => {
                assert!(head.header("retry-after").is_some(), "{:?}", head.head);
                refused += 1;
            }
            s => panic!("stream answered {s}: {:?}", head.head),
        }
    }
    assert_eq!(open.len(), 10, "50 % of 20 connections");
    assert_eq!(refused, 5);
    let mut r = Reader::new(connect(srv.addr));
    r.send(&get("/seq?n=1"));
    assert_eq!(r.response().body_str(), "1");
    // A stream that ends gives its slot back.
    drop(open.pop());
    wait_for(Duration::from_secs(5), "stream slot not given back", || {
        let mut r = Reader::new(connect(srv.addr));
        r.send(&get("/demo/ticker"));
        match r.response_to("HEAD").status {
            200 => Ok(()),
            s => Err(s),
        }
    });
}

// ---------------------------------------------------------------- L11

#[test]
fn chunk_extensions_over_16k_are_400_and_close() {
    let srv = server();
    // 17 chunks, each with a 1000-byte extension: 17 000 bytes in one body.
    let mut body = String::new();
    for _ in 0..17 {
        body.push_str(&format!("1;ext={}\r\na\r\n", "e".repeat(996)));
    }
    body.push_str("0\r\n\r\n");
    assert_rejected(srv.addr, &post_chunked("/echo", &body), 400);
}

#[test]
fn one_chunk_extension_over_16k_is_400_and_closes() {
    let srv = server();
    let body = format!("1;x={}\r\na\r\n0\r\n\r\n", "e".repeat(17 * 1024));
    assert_rejected(srv.addr, &post_chunked("/echo", &body), 400);
}

#[test]
fn trailers_over_16k_are_400_and_close() {
    let srv = server();
    let mut body = String::from("3\r\nabc\r\n0\r\n");
    for i in 0..20 {
        body.push_str(&format!("X-Trailer-{i}: {}\r\n", "t".repeat(1000)));
    }
    body.push_str("\r\n");
    assert_rejected(srv.addr, &post_chunked("/echo", &body), 400);
}

#[test]
fn trailers_within_the_cap_are_accepted() {
    let srv = server();
    let body = format!("3\r\nabc\r\n0\r\nX-Trailer: {}\r\n\r\n", "t".repeat(8000));
    assert_eq!(
        assert_accepted(srv.addr, &post_chunked("/echo", &body)).body_str(),
        "abc"
    );
}

// ---------------------------------------------------------------- L12

/// Linux's poll flag for a peer's FIN; other kernels report only a reset
/// (POLLHUP, POLLERR) to a socket with unread input.
#[cfg(target_os = "linux")]
const POLL_PEER_CLOSED: libc::c_short = libc::POLLRDHUP;
#[cfg(not(target_os = "linux"))]
const POLL_PEER_CLOSED: libc::c_short = 0;

/// True once the peer has closed or reset `s` (POLLRDHUP, POLLHUP or POLLERR),
/// waiting at most `timeout`; reads nothing.
fn wait_peer_gone(s: &TcpStream, timeout: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: s.as_raw_fd(),
        events: POLL_PEER_CLOSED,
        revents: 0,
    };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as libc::c_int) };
        if n > 0 {
            return pfd.revents & (POLL_PEER_CLOSED | libc::POLLHUP | libc::POLLERR) != 0;
        }
        if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

#[test]
fn slow_reader_is_disconnected_and_other_connections_keep_working() {
    let mut cfg = test_config();
    cfg.server.max_write_backlog_bytes = 64 * 1024;
    cfg.server.write_grace = SHORT;
    cfg.server.min_write_rate_bytes_per_sec = 1024 * 1024;
    let srv = spawn_test_server(cfg);

    // A client with a small receive window that asks for big responses and never reads.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&srv.addr.into()).unwrap();
    let mut slow: TcpStream = sock.into();
    slow.set_nodelay(true).unwrap();
    let req = get("/big?bytes=4194304");
    slow.write_all(&req).unwrap();
    let mut first = [0u8; 12];
    std::io::Read::read_exact(&mut slow, &mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // More requests while the first response is stuck: they stay unread in the kernel.
    for _ in 0..20 {
        let _ = slow.write_all(&req);
    }

    // Another client is served meanwhile.
    let mut other = Reader::new(connect(srv.addr));
    other.send(&get("/seq?n=1"));
    assert_eq!(other.response().body_str(), "1");

    assert!(
        wait_peer_gone(&slow, Duration::from_secs(10)),
        "slow reader was never disconnected"
    );

    other.send(&get("/seq?n=2"));
    assert_eq!(other.response().body_str(), "2");
    let mut fresh = Reader::new(connect(srv.addr));
    fresh.send(&get("/plaintext"));
    assert_eq!(fresh.response().body_str(), "Hello, World!");
}

// ---------------------------------------------------------------- robustness

#[test]
fn request_sent_one_byte_at_a_time_gets_its_response() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    for b in post("/echo", b"byte by byte") {
        r.send(&[b]);
    }
    let resp = r.response();
    assert_eq!(resp.status_line(), status_line(200));
    assert_eq!(resp.body_str(), "byte by byte");
    let chunked = post_chunked("/echo", "3;a=b\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n");
    for b in chunked {
        r.send(&[b]);
    }
    assert_eq!(r.response().body_str(), "abcde");
}

#[test]
fn two_hundred_keep_alive_requests_on_one_connection() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    for i in 0..200 {
        r.send(&get(&format!("/seq?n={i}")));
        let resp = r.response();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body_str(), i.to_string());
        assert!(!resp.closes());
    }
}

#[test]
fn sixty_four_pipelined_requests_in_one_write_are_answered_in_order() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    let mut burst = Vec::new();
    for i in 0..64 {
        if i % 2 == 0 {
            burst.extend(get(&format!("/seq?n={i}")));
        } else {
            burst.extend(post("/echo", i.to_string().as_bytes()));
        }
    }
    r.send(&burst);
    for i in 0..64 {
        let resp = r.response();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body_str(), i.to_string());
    }
}

#[test]
fn five_hundred_concurrent_connections_each_get_a_response() {
    raise_fd_limit(4096);
    let mut cfg = test_config();
    cfg.server.max_connections = 1024;
    let srv = spawn_test_server(cfg);
    let mut conns: Vec<Reader> = (0..500).map(|_| Reader::new(connect(srv.addr))).collect();
    for (i, r) in conns.iter_mut().enumerate() {
        r.send(&get(&format!("/seq?n={i}")));
    }
    for (i, r) in conns.iter_mut().enumerate() {
        let resp = r.response();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body_str(), i.to_string());
    }
}

#[test]
fn path_params_are_taken_from_the_request_path() {
    let srv = server();
    let (resp, _) = exchange(srv.addr, &get("/param/first/2nd"));
    assert_eq!(resp.status_line(), status_line(200));
    assert_eq!(resp.body_str(), "a=first b=2nd");
}

#[test]
fn half_closed_client_gets_its_response_and_then_eof() {
    // A client that sends a request and shuts its write side (e.g. `nc -N`)
    // reads until EOF: the server must notice the EOF that arrived with the
    // request and close after answering, not wait for the keep-alive timeout.
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    r.send(&get("/seq?n=1"));
    r.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let resp = r.response();
    assert_eq!(resp.body_str(), "1");
    let rest = r.read_to_close();
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}
