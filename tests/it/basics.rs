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
