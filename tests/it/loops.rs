//! Several event loops on one port. Where the kernel balances listeners
//! (Linux's `SO_REUSEPORT` in the default build, FreeBSD's
//! `SO_REUSEPORT_LB`), each loop has its own and takes a share of the
//! connections; elsewhere (macOS, and `--features portable`) the loops
//! share one listener, and a loop that is busy leaves new connections to
//! the others. See: #15

use crate::support::*;
use conduit::http::{Cx, Method, Mode, Reply, Request, Response};

/// `GET /loop` answers the name of the loop thread that serves it.
fn whoami(r: &mut conduit::http::Router) {
    r.route(
        Method::Get,
        "/loop",
        Mode::Inline,
        |_: &mut Request, _: &mut Cx<'_>| {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            Reply::Response(Response::text(200, name))
        },
    );
}

fn loops(n: usize) -> conduit::config::Config {
    let mut cfg = test_config();
    cfg.server.io_threads = n;
    cfg
}

#[cfg(any(
    all(target_os = "linux", not(feature = "portable")),
    target_os = "freebsd"
))]
#[test]
fn each_loop_listens_for_itself_and_takes_a_share() {
    use std::collections::BTreeSet;
    let srv = spawn_server_with(loops(2), whoami);
    // The kernel picks a listener by a hash of each connection's ports:
    // 64 connections all on one of two loops would be a 2^-63 chance.
    let seen: BTreeSet<String> = (0..64)
        .map(|_| {
            let (resp, _) = exchange(srv.addr, &get("/loop"));
            assert_eq!(resp.status, 200);
            resp.body_str()
        })
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[cfg(not(any(
    all(target_os = "linux", not(feature = "portable")),
    target_os = "freebsd"
)))]
#[test]
fn a_busy_loop_leaves_new_connections_to_the_others() {
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;
    // `/hold` keeps the loop that serves it busy until released (at most 10 s).
    let gate = Arc::new((Mutex::new((false, false)), Condvar::new()));
    let g = gate.clone();
    let srv = spawn_server_with(loops(2), move |r| {
        whoami(r);
        r.route(
            Method::Get,
            "/hold",
            Mode::Inline,
            move |_: &mut Request, _: &mut Cx<'_>| {
                let (lock, cv) = &*g;
                let mut st = lock.lock().unwrap();
                st.0 = true; // entered
                cv.notify_all();
                let (st, _) = cv
                    .wait_timeout_while(st, Duration::from_secs(10), |s| !s.1)
                    .unwrap();
                drop(st);
                let name = std::thread::current().name().unwrap_or("?").to_string();
                Reply::Response(Response::text(200, name))
            },
        );
    });
    let mut held = Reader::new(connect(srv.addr));
    held.send(&get("/hold"));
    {
        let (lock, cv) = &*gate;
        let st = lock.lock().unwrap();
        let (st, waited) = cv.wait_timeout_while(st, READ_TIMEOUT, |s| !s.0).unwrap();
        assert!(st.0 && !waited.timed_out(), "/hold never ran");
    }
    // Its loop is stuck in the handler: the other one accepts and answers.
    let s = connect(srv.addr);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut other = Reader::new(s);
    other.send(&get("/loop"));
    let free = other.response();
    assert_eq!(free.status, 200);
    {
        let (lock, cv) = &*gate;
        lock.lock().unwrap().1 = true;
        cv.notify_all();
    }
    let busy = held.response();
    assert_eq!(busy.status, 200);
    assert_ne!(free.body_str(), busy.body_str(), "one loop served both");
}
