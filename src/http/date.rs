//! A cached, per-thread `Date` header value (RFC 9110 §6.6.1 IMF-fixdate).

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Cache {
    /// The cached text is valid until this instant (the next whole second).
    valid_until: Option<Instant>,
    text: [u8; 29],
}

thread_local! {
    static CACHE: RefCell<Cache> = const { RefCell::new(Cache { valid_until: None, text: [b' '; 29] }) };
}

/// The date at `now` (the loop's clock) as `Sun, 06 Nov 1994 08:49:37 GMT`.
///
/// PERF: reads the wall clock and formats at most once per second per
/// thread; otherwise it is one `Instant` comparison (benches/parse.rs).
pub fn now(now: Instant) -> [u8; 29] {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.valid_until.is_none_or(|v| now >= v) {
            let wall = SystemTime::now();
            let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
            let s = httpdate::fmt_http_date(wall);
            if s.len() == 29 {
                c.text.copy_from_slice(s.as_bytes());
            }
            let to_next_second =
                Duration::from_secs(1) - Duration::from_nanos(u64::from(since.subsec_nanos()));
            c.valid_until = Some(now + to_next_second);
        }
        c.text
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn date_is_imf_fixdate_and_changes_after_a_second() {
        let t = Instant::now();
        let d = super::now(t);
        let s = std::str::from_utf8(&d).unwrap();
        assert!(s.ends_with(" GMT"), "{s}");
        let a = httpdate::parse_http_date(s).unwrap();
        assert_eq!(super::now(t), d, "cached within the second");
        std::thread::sleep(Duration::from_millis(1100));
        let later = super::now(Instant::now());
        let b = httpdate::parse_http_date(std::str::from_utf8(&later).unwrap()).unwrap();
        assert!(b > a);
    }
}
