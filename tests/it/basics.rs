//! Routing, keep-alive, pipelining, HTTP/1.0, HEAD, built-in routes.

use crate::support::*;

#[test]
fn json_and_plaintext_follow_techempower() {
    let srv = spawn_server(test_config());
    let mut r = Reader::new(connect(srv.addr));
    r.send(&get("/json"));
    let resp = r.response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), r#"{"message":"Hello, World!"}"#);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header("server"), Some("conduit"));
    assert!(resp.header("date").is_some());
    r.send(&get("/plaintext"));
    let resp = r.response();
    assert_eq!(resp.body_str(), "Hello, World!");
    assert_eq!(resp.header("content-type"), Some("text/plain"));
}

#[test]
fn panicking_handler_answers_500_and_nothing_else_breaks() {
    use conduit::http::{Cx, Method, Mode, Reply, Request};
    let srv = spawn_server_with(test_config(), |r| {
        r.route(
            Method::Get,
            "/boom",
            Mode::Inline,
            |_: &mut Request, _: &mut Cx<'_>| -> Reply { panic!("inline handler bug") },
        )
        .route(
            Method::Get,
            "/boom-pool",
            Mode::Pool,
            |_: &mut Request, _: &mut Cx<'_>| -> Reply { panic!("pool handler bug") },
        );
    });
    let mut other = Reader::new(connect(srv.addr));
    other.send(&get("/plaintext"));
    assert_eq!(other.response().status, 200);
    let mut r = Reader::new(connect(srv.addr));
    for path in ["/boom", "/boom-pool", "/boom"] {
        r.send(&get(path));
        let resp = r.response();
        assert_eq!(resp.status, 500, "{path}");
    }
    // Same connection, and the other one, still work.
    r.send(&get("/json"));
    assert_eq!(r.response().status, 200);
    other.send(&get("/plaintext"));
    assert_eq!(other.response().status, 200);
}

#[test]
fn dropped_responder_answers_500() {
    use conduit::http::{Cx, Method, Mode, Reply, Request};
    let srv = spawn_server_with(test_config(), |r| {
        r.route(
            Method::Get,
            "/drop",
            Mode::Inline,
            |_: &mut Request, cx: &mut Cx<'_>| {
                drop(cx.responder());
                Reply::Later
            },
        );
    });
    let (resp, _) = exchange(srv.addr, &get("/drop"));
    assert_eq!(resp.status, 500);
}

#[test]
fn unknown_path_is_404_and_wrong_method_405_with_allow() {
    let srv = spawn_server(test_config());
    let mut r = Reader::new(connect(srv.addr));
    r.send(&get("/nope"));
    assert_eq!(r.response().status, 404);
    r.send(b"POST /json HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc");
    let resp = r.response();
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    // The body of the refused request was consumed: the connection stays in sync.
    r.send(&get("/plaintext"));
    assert_eq!(r.response().status, 200);
}

#[test]
fn metrics_count_requests_by_route_and_status() {
    let srv = spawn_server(test_config());
    let mut r = Reader::new(connect(srv.addr));
    for _ in 0..3 {
        r.send(&get("/plaintext"));
        r.response();
    }
    r.send(&get("/metrics"));
    let m = r.response();
    assert_eq!(m.status, 200);
    let text = m.body_str();
    assert!(
        text.contains(r#"conduit_http_requests_total{route="/plaintext",status="200"} 3"#),
        "{text}"
    );
    assert!(text.contains("conduit_http_open_connections 1"), "{text}");
    assert!(
        text.contains("conduit_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[test]
fn a_fixed_route_answers_the_same_through_its_handler() {
    // `/plaintext` is a fixed route: a request with a body takes the
    // general path (body read, handler called) and gets the same response.
    let srv = spawn_server(test_config());
    let mut r = Reader::new(connect(srv.addr));
    let fast = {
        r.send(&get("/plaintext"));
        r.response()
    };
    r.send(&http_request("GET", "/plaintext", &[], b"ignored"));
    let slow = r.response();
    for resp in [&fast, &slow] {
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body_str(), "Hello, World!");
        assert_eq!(resp.header("content-type"), Some("text/plain"));
    }
    r.send(&http_request("HEAD", "/plaintext", &[], b""));
    let head = r.response_to("HEAD");
    assert_eq!(head.header("content-length"), Some("13"));
    assert!(head.body.is_empty());
}

#[test]
fn pipelined_requests_answered_in_one_batch_are_all_counted() {
    // Runs of equal requests in one batch reach the metrics together, when
    // the batch ends: the counts must still be exact, and a scrape in the
    // same batch must see the requests before it.
    let srv = spawn_server(test_config());
    let mut r = Reader::new(connect(srv.addr));
    let mut batch = Vec::new();
    for path in [
        "/plaintext",
        "/plaintext",
        "/json",
        "/nope",
        "/plaintext",
        "/json",
    ] {
        batch.extend_from_slice(&get(path));
    }
    batch.extend_from_slice(&get("/metrics"));
    r.send(&batch);
    for (want, path) in [
        (200, "/plaintext"),
        (200, "/plaintext"),
        (200, "/json"),
        (404, "/nope"),
        (200, "/plaintext"),
        (200, "/json"),
    ] {
        let resp = r.response();
        assert_eq!(resp.status, want, "{path}");
        // `/json` bodies share one reused buffer per thread: each must
        // still be whole.
        if path == "/json" {
            assert_eq!(resp.body_str(), r#"{"message":"Hello, World!"}"#);
        }
    }
    let text = r.response().body_str();
    for line in [
        r#"conduit_http_requests_total{route="/plaintext",status="200"} 3"#,
        r#"conduit_http_requests_total{route="/json",status="200"} 2"#,
        r#"conduit_http_requests_total{route="unmatched",status="404"} 1"#,
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let count = |route: &str| {
        let key = format!("conduit_http_request_duration_seconds_count{{route=\"{route}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    assert_eq!(count("/plaintext"), Some(3), "{text}");
    assert_eq!(count("/json"), Some(2), "{text}");
}

#[test]
fn health_routes_answer_and_ready_turns_503_on_shutdown() {
    let srv = spawn_server(test_config());
    let mut r = Reader::new(connect(srv.addr));
    r.send(&get("/health/live"));
    assert_eq!(r.response().status, 200);
    r.send(&get("/health/ready"));
    assert_eq!(r.response().status, 200);
}

/// A route answering later from another thread: the thread waits until
/// the client is gone (or `ms` pass), reports what `Responder::is_closed`
/// said, then answers.
fn later_routes(r: &mut conduit::http::Router, seen: std::sync::mpsc::Sender<bool>) {
    use conduit::http::{Cx, Method, Mode, Reply, Request, Response};
    let seen = std::sync::Mutex::new(seen);
    for (mode, path) in [(Mode::Inline, "/later"), (Mode::Pool, "/later-pool")] {
        let seen = seen.lock().unwrap().clone();
        r.route(
            Method::Get,
            path,
            mode,
            move |req: &mut Request, cx: &mut Cx<'_>| {
                let ms: u64 = req
                    .query_param("ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(3000);
                let resp = cx.responder();
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
                    while !resp.is_closed() && std::time::Instant::now() < until {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    let _ = seen.send(resp.is_closed());
                    let _ = resp.respond(Response::text(200, "late"));
                });
                Reply::Later
            },
        );
    }
}

#[test]
fn a_deferred_reply_learns_that_its_client_went_away() {
    // See: #13 (5). A producer answering through a `Responder` can tell a
    // client that closed (or shut its sending side) from one still waiting.
    let (tx, rx) = std::sync::mpsc::channel();
    let srv = spawn_server_with(test_config(), |r| later_routes(r, tx));
    let wait = std::time::Duration::from_secs(2);
    for path in ["/later", "/later-pool"] {
        // Closed outright.
        let mut r = Reader::new(connect(srv.addr));
        r.send(&get(path));
        drop(r);
        assert_eq!(rx.recv_timeout(wait), Ok(true), "{path}: close");
        // Half-closed, nothing pipelined: no request will follow.
        let mut r = Reader::new(connect(srv.addr));
        r.send(&get(path));
        r.stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(rx.recv_timeout(wait), Ok(true), "{path}: half-close");
        drop(r);
        // A client still waiting gets its answer, and was never reported gone.
        let mut r = Reader::new(connect(srv.addr));
        r.send(&get(&format!("{path}?ms=100")));
        assert_eq!(r.response().body_str(), "late");
        assert_eq!(rx.recv_timeout(wait), Ok(false), "{path}: still there");
        // A request pipelined behind it, then a half-close: the client
        // still reads, so the first reply is not abandoned.
        let mut r = Reader::new(connect(srv.addr));
        r.send(&[get(&format!("{path}?ms=100")), get("/plaintext")].concat());
        r.stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(r.response().body_str(), "late");
        assert_eq!(r.response().body_str(), "Hello, World!");
        assert_eq!(rx.recv_timeout(wait), Ok(false), "{path}: pipelined");
    }
}

#[test]
fn a_stream_started_for_a_client_that_already_left_is_closed_at_once() {
    // See: #13 (5). A deferred reply that turns into an SSE stream after its
    // client left: the stream's senders see it closed from the start, so a
    // producer does not stream into the void.
    use conduit::http::{Cx, Method, Mode, Reply, Request, Response};
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let srv = spawn_server_with(test_config(), move |r| {
        let tx = tx.lock().unwrap().clone();
        r.route(
            Method::Get,
            "/later-sse",
            Mode::Inline,
            move |_: &mut Request, cx: &mut Cx<'_>| {
                let resp = cx.responder();
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
                    while !resp.is_closed() && std::time::Instant::now() < until {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    let closed = resp
                        .sse(Response::new(200))
                        .map_or(true, |sender| sender.is_closed());
                    let _ = tx.send(closed);
                });
                Reply::Later
            },
        );
    });
    let mut r = Reader::new(connect(srv.addr));
    r.send(&get("/later-sse"));
    drop(r);
    assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5)), Ok(true));
}
