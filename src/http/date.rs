//! A cached, per-thread `Date` header value (RFC 9110 §6.6.1 IMF-fixdate).

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

struct Cache {
    secs: u64,
    text: [u8; 29],
}

thread_local! {
    static CACHE: RefCell<Cache> = const { RefCell::new(Cache { secs: u64::MAX, text: [b' '; 29] }) };
}

/// The current date as `Sun, 06 Nov 1994 08:49:37 GMT`, formatted at most
/// once per second per thread.
pub fn now() -> [u8; 29] {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.secs != secs {
            let s = httpdate::fmt_http_date(now);
            if s.len() == 29 {
                c.text.copy_from_slice(s.as_bytes());
            }
            c.secs = secs;
        }
        c.text
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn date_is_imf_fixdate() {
        let d = super::now();
        let s = std::str::from_utf8(&d).unwrap();
        assert!(s.ends_with(" GMT"), "{s}");
        assert!(httpdate::parse_http_date(s).is_ok());
    }
}
