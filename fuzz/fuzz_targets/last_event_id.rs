#![no_main]
use conduit::fuzzing::parse_event_id;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    if let Some((stream, seq)) = parse_event_id(s) {
        assert_eq!(
            parse_event_id(&format!("{stream}-{seq}")),
            Some((stream, seq))
        );
    }
});
