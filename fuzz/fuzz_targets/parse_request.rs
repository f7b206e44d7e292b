#![no_main]
use conduit::http::{parse::parse_head, Limits, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut req = Request::default();
    if let Ok(Some((len, _))) = parse_head(data, &Limits::default(), &mut req) {
        assert!(len <= data.len());
        let _ = (req.path(), req.query(), req.host(), req.headers().count());
    }
});
