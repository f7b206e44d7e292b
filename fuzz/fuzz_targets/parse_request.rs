#![no_main]
use conduit::http::{parse::parse_head, Limits, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut req = Request::default();
    if let Ok(Some((head, path))) = parse_head(data, &Limits::default()) {
        assert!(head.len <= data.len());
        head.fill(data, &mut req);
        assert_eq!(path, req.path());
        let _ = (req.query(), req.host(), req.headers().count());
    }
});
