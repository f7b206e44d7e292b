//! Graceful shutdown of the real binary on SIGTERM/SIGINT.

use crate::support::*;
use std::time::Duration;

fn signal(p: &Proc, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(p.child.id() as i32, sig) };
    assert_eq!(rc, 0);
}

fn wait_exit(p: &mut Proc) -> std::process::ExitStatus {
    wait_for(Duration::from_secs(20), "conduit did not exit", || {
        p.child.try_wait().unwrap().ok_or("still running")
    })
}

#[test]
fn sigterm_lets_slow_requests_finish_then_exits_0() {
    let mut p = start_binary(&[]);
    let mut conns: Vec<Reader> = (0..3)
        .map(|_| {
            let mut r = Reader::new(connect(p.addr));
            // The health response proves the server parsed the pipelined
            // sleep request behind it and handed it to a worker.
            r.send(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\nGET /demo/sleep?ms=1500 HTTP/1.1\r\nHost: localhost\r\n\r\n");
            assert_eq!(r.response().status, 200);
            r
        })
        .collect();
    let mut idle = Reader::new(connect(p.addr));
    idle.send(&get("/plaintext"));
    assert_eq!(idle.response().status, 200);

    signal(&p, libc::SIGTERM);
    for r in &mut conns {
        let resp = r.response();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body_str(), "slept 1500 ms\n");
        assert!(
            resp.closes(),
            "responses during shutdown say Connection: close"
        );
        assert!(r.closed());
    }
    // An idle keep-alive connection is simply closed.
    assert!(idle.closed());
    let st = wait_exit(&mut p);
    assert_eq!(st.code(), Some(0), "{st:?}");
}

#[test]
fn sigint_ends_sse_streams_cleanly() {
    let mut p = start_binary(&[("CONDUIT_DEMO_TICKER_INTERVAL_MS", "50")]);
    let mut r = Reader::new(connect(p.addr));
    r.send(&get("/demo/ticker"));
    let head = r.response_to("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(r.read_chunk().unwrap(), b"retry: 3000\n\n");
    let ev = String::from_utf8(r.read_chunk().unwrap()).unwrap();
    assert!(ev.starts_with("data: {\"seq\":"), "{ev}");
    signal(&p, libc::SIGINT);
    // Events may still arrive; then the stream ends with the last chunk.
    while r.read_chunk().is_some() {}
    assert!(r.closed());
    assert_eq!(wait_exit(&mut p).code(), Some(0));
}

#[test]
fn in_process_shutdown_refuses_new_connections() {
    let mut srv = spawn_server(test_config());
    let addr = srv.addr;
    srv.shutdown();
    // The listener is closed: connecting fails, or the connection is closed unanswered.
    if let Ok(s) = std::net::TcpStream::connect(addr) {
        let mut r = Reader::new(s);
        r.stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        assert!(r.closed());
    }
}

#[test]
fn sigterm_as_soon_as_it_listens_is_a_graceful_shutdown() {
    // The handlers are installed before the listener opens, so no SIGTERM
    // can meet the default action (which would kill it mid-request).
    let mut p = start_binary(&[]);
    signal(&p, libc::SIGTERM);
    let st = wait_exit(&mut p);
    assert_eq!(st.code(), Some(0), "{st:?}");
}

#[test]
fn sigterm_still_drains_and_exits_when_the_log_pipe_is_closed() {
    // See: #13 (10). A failed log write must not stop shutdown: the signal
    // thread used to die on its "shutting down" line.
    let mut p = start_binary_closing_log(&[]);
    let mut r = Reader::new(connect(p.addr));
    r.send(&get("/plaintext"));
    assert_eq!(r.response().status, 200);
    // The reader thread has returned by now; let its pipe end close.
    std::thread::sleep(Duration::from_millis(100));
    signal(&p, libc::SIGTERM);
    let st = wait_exit(&mut p);
    assert_eq!(st.code(), Some(0), "{st:?}");
}

#[test]
fn requests_sent_on_keep_alive_connections_right_after_sigterm_are_answered() {
    // See: #13 (2). Idle keep-alive connections were closed at the signal
    // without reading their sockets, so a request already sent got EOF.
    let mut p = start_binary(&[]);
    let mut conns: Vec<Reader> = (0..8)
        .map(|_| {
            let mut r = Reader::new(connect(p.addr));
            r.send(&get("/json"));
            assert_eq!(r.response().status, 200);
            r
        })
        .collect();
    signal(&p, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(1));
    for r in &mut conns {
        r.send(&get("/json"));
    }
    // Each is answered: with `Connection: close` during the drain, or as
    // usual if it beat the loop to the signal (and the connection then
    // closes after the idle grace).
    for r in &mut conns {
        let resp = r.response();
        assert_eq!(resp.status, 200, "{:?}", resp.head);
        assert!(r.closed());
    }
    assert_eq!(wait_exit(&mut p).code(), Some(0));
}

#[test]
fn a_keep_alive_readiness_poller_sees_503_during_the_drain() {
    // See: #13 (2).
    let mut p = start_binary(&[]);
    let mut r = Reader::new(connect(p.addr));
    r.send(&get("/health/ready"));
    assert_eq!(r.response().status, 200);
    signal(&p, libc::SIGTERM);
    // Poll as a load balancer would, on the same connection, until the
    // server says it is not ready and closes. (A 503 that beats the loops
    // to the signal keeps the connection open.)
    wait_for(Duration::from_secs(5), "readiness never said 503", || {
        r.send(&get("/health/ready"));
        let resp = r.response();
        if resp.status == 503 && resp.closes() {
            Ok(())
        } else {
            Err(resp.head)
        }
    });
    assert!(r.closed());
    assert_eq!(wait_exit(&mut p).code(), Some(0));
}

#[test]
fn an_idle_connection_is_closed_after_the_drain_grace_and_the_exit_is_clean() {
    // See: #13 (2).
    let mut p = start_binary(&[("CONDUIT_HTTP_DRAIN_IDLE_GRACE_MS", "200")]);
    let mut idle = Reader::new(connect(p.addr));
    idle.send(&get("/plaintext"));
    assert_eq!(idle.response().status, 200);
    signal(&p, libc::SIGTERM);
    assert!(idle.closed());
    assert!(idle.leftover().is_empty(), "{:?}", idle.leftover());
    assert_eq!(wait_exit(&mut p).code(), Some(0));
}

#[test]
fn a_request_cut_off_by_the_drain_deadline_makes_the_exit_status_say_so() {
    // See: #13 (2): exit status 3 when the deadline cut a request off.
    let mut p = start_binary(&[("CONDUIT_HTTP_DRAIN_TIMEOUT_MS", "300")]);
    let mut r = Reader::new(connect(p.addr));
    r.send(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\nGET /demo/sleep?ms=5000 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(r.response().status, 200);
    signal(&p, libc::SIGTERM);
    assert!(r.closed(), "the cut-off request's connection is closed");
    assert_eq!(wait_exit(&mut p).code(), Some(3));
}

#[test]
fn a_response_still_being_written_outlives_the_drain_idle_grace() {
    // See: #13 (2). The idle grace closed a keep-alive connection whose
    // large response was still in its write buffer: the body was cut short.
    let mut cfg = test_config();
    cfg.http.drain_idle_grace = Duration::from_millis(100);
    let mut srv = spawn_test_server(cfg);
    let n = 8 << 20;
    let mut r = Reader::new(connect(srv.addr));
    r.send(&get(&format!("/big?bytes={n}")));
    // The client reads nothing yet: most of the body waits in the server.
    std::thread::sleep(Duration::from_millis(100));
    let stopper = std::thread::spawn(move || srv.shutdown());
    std::thread::sleep(Duration::from_millis(400));
    let resp = r.response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), n, "the whole body arrives");
    stopper.join().unwrap();
}

#[test]
fn a_connection_waiting_at_the_cap_is_answered_when_the_drain_begins() {
    // See: #13 (2, 7). A connection accepted at the cap and held for a
    // slot was dropped unanswered when the listener closed.
    let mut cfg = test_config();
    cfg.server.max_connections = 1;
    let mut srv = spawn_test_server(cfg);
    let mut busy = Reader::new(connect(srv.addr));
    busy.send(&get("/demo/sleep?ms=600"));
    std::thread::sleep(Duration::from_millis(100));
    let mut waiting = Reader::new(connect(srv.addr));
    waiting.send(&get("/seq?n=7"));
    assert!(
        !waiting.poll_for(Duration::from_millis(200)),
        "served above the cap"
    );
    let stopper = std::thread::spawn(move || srv.shutdown());
    let resp = waiting.response();
    assert_eq!(resp.body_str(), "7");
    assert!(resp.closes(), "{:?}", resp.head);
    assert_eq!(busy.response().status, 200);
    stopper.join().unwrap();
}
