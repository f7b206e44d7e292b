#![no_main]
use conduit::http::framing::{analyze, BodyKind};
use libfuzzer_sys::fuzz_target;

// The first byte picks HTTP/1.0 or 1.1; the rest is a header block, parsed
// by httparse (as the server does) before `analyze` judges it.
fuzz_target!(|data: &[u8]| {
    let Some((&v, fields)) = data.split_first() else {
        return;
    };
    let mut head = format!("POST / HTTP/1.{}\r\n", v & 1).into_bytes();
    head.extend_from_slice(fields);
    head.extend_from_slice(b"\r\n\r\n");
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = req.parse(&head) else {
        return;
    };
    let Ok(f) = analyze(req.version.unwrap_or(1), req.headers) else {
        return;
    };
    let has = |n: &str| req.headers.iter().any(|h| h.name.eq_ignore_ascii_case(n));
    assert_eq!(f.http10, v & 1 == 0);
    assert!(!(f.http10 && f.expect_continue));
    match f.body {
        BodyKind::Chunked => assert!(!f.http10 && !has("content-length")),
        BodyKind::Length(_) => assert!(!has("transfer-encoding")),
        BodyKind::None => assert!(!has("content-length") && !has("transfer-encoding")),
    }
});
