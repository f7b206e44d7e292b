#![no_main]
use conduit::http::sse::{encode, Event};
use libfuzzer_sys::fuzz_target;

// Whatever the data, the encoding is one event whose data decodes back to it
// (line endings normalised to LF).
fuzz_target!(|data: &str| {
    let mut out = bytes::BytesMut::new();
    encode(
        &Event {
            event: None,
            id: None,
            data,
            retry_ms: None,
        },
        &mut out,
    )
    .unwrap();
    let text = std::str::from_utf8(&out).unwrap();
    assert!(text.ends_with("\n\n"));
    let body = &text[..text.len() - 2];
    assert!(!body.contains("\n\n"), "one event only");
    let decoded: Vec<&str> = body
        .split('\n')
        .map(|l| {
            l.strip_prefix("data:")
                .unwrap()
                .strip_prefix(' ')
                .unwrap_or_else(|| l.strip_prefix("data:").unwrap())
        })
        .collect();
    let want = data.replace("\r\n", "\n").replace('\r', "\n");
    assert_eq!(decoded.join("\n"), want);
});
