#![no_main]
use conduit::http::{ChunkedDecoder, Progress};
use libfuzzer_sys::fuzz_target;

// Whole input and byte-at-a-time feeding must agree.
fuzz_target!(|data: &[u8]| {
    let mut whole = ChunkedDecoder::new(16384, 16384);
    let mut a = Vec::new();
    let ra = whole.decode(data, &mut a, 1 << 20);
    let mut split = ChunkedDecoder::new(16384, 16384);
    let mut b = Vec::new();
    let mut used = 0;
    let mut rb = Ok((0, Progress::NeedMore));
    for (i, byte) in data.iter().enumerate() {
        rb = split.decode(std::slice::from_ref(byte), &mut b, 1 << 20);
        match rb {
            Ok((n, Progress::NeedMore)) => used += n,
            Ok((n, Progress::Done)) => {
                used += n;
                rb = Ok((used, Progress::Done));
                let _ = i;
                break;
            }
            Err(_) => break,
        }
    }
    match (ra, rb) {
        (Ok((n, Progress::Done)), Ok((m, Progress::Done))) => {
            assert_eq!(n, m);
            assert_eq!(a, b);
        }
        (Err(e), Err(f)) => assert_eq!(e, f),
        (Ok((_, Progress::NeedMore)), Ok((_, Progress::NeedMore))) => assert_eq!(a, b),
        (x, y) => panic!("whole {x:?} vs bytewise {y:?}"),
    }
});
