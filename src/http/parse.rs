//! Request heads: httparse plus the framing rules it does not enforce.
//!
//! Sans-IO: functions over bytes and limits ([`parse_head`]) and a reusable
//! [`Request`] ([`Head::fill`]), so tests, fuzzers and benches drive them
//! without sockets.

use super::error::ParseError;
use super::framing;
use super::request::{HeaderIndex, Method, Request};
use super::Limits;
use std::mem::MaybeUninit;
use std::ops::Range;

/// httparse needs a header array; this bounds `max_headers`.
const HEADER_SLOTS: usize = 512;

fn offset(base: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
    start..start + part.len()
}

/// A request head [`parse_head`] accepted, as positions in the buffer it
/// was parsed from. Routing needs only `method` and `path`; [`Head::fill`]
/// builds the [`Request`] a handler sees. PERF: a route with a fixed
/// response is answered without building one (callgrind,
/// benches/load/pipeline_client.py).
#[derive(Debug, Clone)]
pub struct Head {
    /// The head's length in bytes; the body, if any, follows it.
    pub len: usize,
    /// How the body is framed and whether the connection stays open.
    pub framing: framing::Framing,
    /// The method.
    pub method: Method,
    method_range: Range<usize>,
    path_range: Range<usize>,
    query: Option<Range<usize>>,
    authority: Option<Range<usize>>,
}

impl Head {
    /// Makes `req` (cleared first) the request of this head; `buf` is the
    /// buffer the head was parsed from.
    pub fn fill(&self, buf: &[u8], req: &mut Request) {
        req.clear();
        req.head
            .extend_from_slice(buf.get(..self.len).unwrap_or_default());
        req.method = self.method;
        req.method_range = self.method_range.clone();
        req.http10 = self.framing.http10;
        req.path = self.path_range.clone();
        req.query = self.query.clone();
        req.authority = self.authority.clone();
        req.keep_alive = self.framing.keep_alive;
    }
}

/// Parses a request head from the start of `buf`. `Ok(None)`: the head is
/// incomplete (and within limits so far). With the head comes its path as
/// [`Request::path`] gives it, borrowed from `buf` (routing needs no second
/// UTF-8 check).
// PERF: inlined with the plain path, the head is built where the caller
// keeps it instead of being moved through `Ok(Some(..))` (callgrind,
// pipeline_client.py --wrk-heads: -32 instructions).
#[inline(always)]
pub fn parse_head<'b>(
    buf: &'b [u8],
    limits: &Limits,
) -> Result<Option<(Head, &'b str)>, ParseError> {
    match parse_plain(buf, limits) {
        Some(h) => Ok(Some(h)),
        None => parse_any(buf, limits),
    }
}

/// Header slots of the plain path; a head with more fields (a browser's)
/// takes the full parse. PERF: safe code needs initialized slots, and the
/// stores cost more than their instruction count says:
/// filling 16 took ~17 % of `Conn::process`'s samples (perf record,
/// pipelined /plaintext); 8 cover curl, wrk and most API clients.
const PLAIN_SLOTS: usize = 8;

/// The usual request read without httparse: a method [`Method`] names, an
/// origin-form target of visible ASCII, `HTTP/1.1` or `HTTP/1.0` and CRLF;
/// then plain field lines ([`plain_fields`]). `None` for anything else,
/// complete or not, and for any fault: [`parse_any`] then decides, and
/// reports exactly. So this path accepts only what the full parse accepts,
/// with the same result (a unit test compares them on mutated heads).
///
/// PERF: httparse's request line checks the target as UTF-8 a byte at a
/// time (~100 instructions for `/plaintext`) before it is scanned for
/// ASCII and the `?`; here one pass, 8 bytes at a time, does both
/// (callgrind, benches/load/pipeline_client.py --wrk-heads).
#[inline(always)]
fn parse_plain<'b>(buf: &'b [u8], limits: &Limits) -> Option<(Head, &'b str)> {
    let (method, method_len) = plain_method(buf)?;
    let t0 = method_len + 1;
    if buf.get(t0) != Some(&b'/') {
        return None;
    }
    let (t_end, q) = scan_target(buf, t0)?;
    // PERF: two word compares; the slice patterns compared byte by byte
    // (callgrind, pipeline_client.py).
    let version = u64::from_le_bytes(buf.get(t_end + 1..t_end + 9)?.try_into().ok()?);
    let http10 = match version {
        v if v == u64::from_le_bytes(*b"HTTP/1.1") => false,
        v if v == u64::from_le_bytes(*b"HTTP/1.0") => true,
        _ => return None,
    };
    if buf.get(t_end + 9..t_end + 11)? != b"\r\n" {
        return None;
    }
    let line_end = t_end + 11;
    if line_end - 2 > limits.max_request_line_bytes {
        return None;
    }
    let mut slots = [httparse::EMPTY_HEADER; PLAIN_SLOTS];
    let n = limits.max_headers.min(PLAIN_SLOTS);
    let (len, count) = plain_fields(buf, line_end, slots.get_mut(..n)?, limits)?;
    if len > limits.max_head_bytes {
        return None;
    }
    let framing = framing::analyze(u8::from(!http10), slots.get(..count)?).ok()?;
    let path_end = q.unwrap_or(t_end);
    let path = buf.get(t0..path_end)?;
    debug_assert!(path.iter().all(|b| (0x21..=0x7e).contains(b)));
    // SAFETY: `scan_target` let through only bytes in 0x21..=0x7E up to
    // `t_end`, and `path_end <= t_end`: the path is ASCII, hence UTF-8.
    let path_str = unsafe { std::str::from_utf8_unchecked(path) };
    let head = Head {
        len,
        framing,
        method,
        method_range: 0..method_len,
        path_range: t0..path_end,
        query: q.map(|q| q + 1..t_end),
        authority: None,
    };
    Some((head, path_str))
}

/// RFC 9110 §5.6.2 tchar, as a table for the field-name loop.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = super::chunked::is_tchar(i as u8);
        i += 1;
    }
    t
};

/// The field lines of a plain head, from `at` (right after the request
/// line) through the blank line, into `slots`. Returns the head's length
/// and the number of fields, or `None` for anything unusual, complete or
/// not: more fields than slots, a byte outside visible ASCII and SP in a
/// value (HTAB, obs-text), an empty value, whitespace before the CRLF, a
/// bare LF, a line over its limit (L2). The full parse then decides.
///
/// Each field it returns is the one httparse's header parser returns (a
/// tchar name, the value without leading SP/HTAB), so [`framing::analyze`]
/// sees the same input; the unit tests compare the two paths.
///
/// PERF: replaces `httparse::parse_headers` plus the line checks of
/// [`lines_ok_fast`] on the plain path: httparse walks names and values
/// shorter than 32 bytes a byte at a time (~700 instructions for wrk's
/// three fields); values here are scanned 8 bytes at a time (callgrind,
/// pipeline_client.py --wrk-heads).
#[inline(always)]
fn plain_fields<'b>(
    buf: &'b [u8],
    mut at: usize,
    slots: &mut [httparse::Header<'b>],
    limits: &Limits,
) -> Option<(usize, usize)> {
    let mut n = 0;
    loop {
        if *buf.get(at)? == b'\r' {
            return (buf.get(at + 1) == Some(&b'\n')).then_some((at + 2, n));
        }
        let slot = slots.get_mut(n)?;
        let name_start = at;
        while TCHAR[usize::from(*buf.get(at)?)] {
            at += 1;
        }
        let name = buf.get(name_start..at)?;
        if name.is_empty() || buf.get(at) != Some(&b':') {
            return None;
        }
        at += 1;
        while matches!(buf.get(at)?, b' ' | b'\t') {
            at += 1;
        }
        let value_start = at;
        at = scan_value(buf, at)?;
        if at == value_start
            || buf.get(at - 1) == Some(&b' ')
            || buf.get(at..at + 2)? != b"\r\n"
            || at - name_start > limits.max_header_field_bytes
        {
            return None;
        }
        *slot = httparse::Header {
            // SAFETY: every byte of `name` passed `TCHAR`, which holds only
            // ASCII bytes, so it is UTF-8.
            name: unsafe { std::str::from_utf8_unchecked(name) },
            value: buf.get(value_start..at)?,
        };
        n += 1;
        at += 2;
    }
}

/// The position of the first byte from `start` outside 0x20..=0x7E (SP and
/// visible ASCII), 8 bytes at a time; `None` if `buf` ends first.
#[inline(always)]
fn scan_value(buf: &[u8], start: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut at = start;
    while let Some(word) = buf.get(at..at + 8) {
        let w = u64::from_le_bytes(word.try_into().ok()?);
        // As in `scan_target`: the lowest flagged byte is exact.
        let stop = (w.wrapping_sub(LO * 0x20) & !w & HI) | ((w.wrapping_add(LO) | w) & HI);
        if stop != 0 {
            return Some(at + (stop.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    buf.get(at..)?
        .iter()
        .position(|&c| !(0x20..=0x7e).contains(&c))
        .map(|i| at + i)
}

/// The method at the start of `buf` if [`Method`] names it and a SP follows.
// PERF: `Method::from_token`'s table again, with the SP: finding the SP
// first and calling it cost 29 instructions more (callgrind,
// pipeline_client.py --wrk-heads).
fn plain_method(buf: &[u8]) -> Option<(Method, usize)> {
    Some(match buf.get(..8)? {
        [b'G', b'E', b'T', b' ', ..] => (Method::Get, 3),
        [b'P', b'O', b'S', b'T', b' ', ..] => (Method::Post, 4),
        [b'H', b'E', b'A', b'D', b' ', ..] => (Method::Head, 4),
        [b'P', b'U', b'T', b' ', ..] => (Method::Put, 3),
        [b'D', b'E', b'L', b'E', b'T', b'E', b' ', ..] => (Method::Delete, 6),
        [b'P', b'A', b'T', b'C', b'H', b' ', ..] => (Method::Patch, 5),
        [b'O', b'P', b'T', b'I', b'O', b'N', b'S', b' '] => (Method::Options, 7),
        _ => return None,
    })
}

/// Scans a target from `buf[start]` to the SP that ends it, 8 bytes at a
/// time. Returns the SP's position and the first `?`'s, or `None` if a byte
/// outside visible ASCII (0x21..=0x7E) comes first or `buf` ends.
// PERF: inlined into the plain path even though the full parse calls it
// too (callgrind, pipeline_client.py: +20 instructions as a call).
#[inline(always)]
fn scan_target(buf: &[u8], start: usize) -> Option<(usize, Option<usize>)> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const QS: u64 = LO * b'?' as u64;
    let mut at = start;
    let mut q = None;
    while let Some(word) = buf.get(at..at + 8) {
        let w = u64::from_le_bytes(word.try_into().ok()?);
        // Bytes below 0x21 (SP among them) and bytes above 0x7E. In each
        // test a borrow or carry runs only upward, from a flagged byte, so
        // the lowest flagged byte is exact.
        let below = w.wrapping_sub(LO * 0x21) & !w & HI;
        let above = (w.wrapping_add(LO) | w) & HI;
        let stop = below | above;
        let x = w ^ QS;
        let qs = x.wrapping_sub(LO) & !x & HI;
        let first_q = (qs.trailing_zeros() / 8) as usize;
        if stop != 0 {
            let end = (stop.trailing_zeros() / 8) as usize;
            if q.is_none() && first_q < end {
                q = Some(at + first_q);
            }
            return (word.get(end) == Some(&b' ')).then_some((at + end, q));
        }
        if q.is_none() && qs != 0 {
            q = Some(at + first_q);
        }
        at += 8;
    }
    for (i, &c) in buf.get(at..)?.iter().enumerate() {
        match c {
            b' ' => return Some((at + i, q)),
            b'?' if q.is_none() => q = Some(at + i),
            0x21..=0x7e => {}
            _ => return None,
        }
    }
    None
}

/// The full parse: httparse's request parser, then every check, with the
/// exact error for each fault.
fn parse_any<'b>(buf: &'b [u8], limits: &Limits) -> Result<Option<(Head, &'b str)>, ParseError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADER_SLOTS];
    let n = limits.max_headers.min(HEADER_SLOTS);
    let mut parsed = httparse::Request::new(&mut []);
    let status = match parsed.parse_with_uninit_headers(buf, &mut slots[..n]) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => {
            // The head may be incomplete; lengths take precedence when they are exceeded.
            framing::check_partial_head(buf, limits)?;
            return Err(ParseError::TooManyHeaders);
        }
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(e) => {
            framing::check_partial_head(buf, limits)?;
            // httparse rejects a folded line as a bad header name; say what it really is (S11).
            if has_obs_fold(buf) {
                return Err(ParseError::ObsFold);
            }
            return Err(ParseError::Malformed(e));
        }
    };
    let len = match status {
        httparse::Status::Partial => {
            framing::check_partial_head(buf, limits)?;
            return Ok(None);
        }
        httparse::Status::Complete(len) => len,
    };
    let head = buf.get(..len).unwrap_or_default();
    // PERF: httparse already found every line; check their endings and
    // lengths from its slices instead of scanning the head again
    // (callgrind, benches/load/pipeline_client.py). Unusual heads take the
    // full scan.
    if !lines_ok_fast(buf, head, parsed.headers, limits) {
        framing::check_head_bytes(head, limits)?;
    }
    if len > limits.max_head_bytes {
        return Err(ParseError::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(ParseError::Malformed(httparse::Error::Token));
    };
    let fr = framing::analyze(version, parsed.headers)?;

    let method_token = Method::from_token(method);
    let t = offset(buf, target.as_bytes());
    // httparse ended the target at a SP and let through only bytes from
    // 0x21 up, so the plain path's scan stops there too; it fails on a
    // non-ASCII byte.
    let Some((t_end, q)) = scan_target(buf, t.start) else {
        return Err(ParseError::InvalidTarget);
    };
    debug_assert_eq!(t_end, t.end);
    let (path, query, authority) = split_target(target, t.start, q.map(|q| q - t.start))?;
    let (path_range, path_str) = if method_token == Method::Options && target == "*" {
        (t, target)
    } else {
        let p = target
            .get(path.start - t.start..path.end - t.start)
            .unwrap_or_default();
        (path, if p.is_empty() { "/" } else { p })
    };
    let head = Head {
        len,
        framing: fr,
        method: method_token,
        method_range: offset(buf, method.as_bytes()),
        path_range,
        query,
        authority,
    };
    Ok(Some((head, path_str)))
}

/// The header ranges of a head [`parse_head`] accepted (parsed again: most
/// requests never ask for them, see [`Request::headers`]). The ranges are
/// those of the first parse, since `head` is a copy of its bytes.
pub(crate) fn index_headers(head: &[u8]) -> HeaderIndex {
    // An accepted head ends every line in CRLF (S13); its fields start
    // after the request line and the empty lines allowed before it.
    // PERF: httparse's header parser, not its request parser: with a
    // second call site the request parser was no longer inlined into
    // `parse_head` (callgrind, pipeline_client.py: +125 instructions).
    let mut start = 0;
    while head.get(start..start + 2) == Some(b"\r\n") {
        start += 2;
    }
    let fields = match memchr::memchr(b'\n', head.get(start..).unwrap_or_default()) {
        Some(lf) => head.get(start + lf + 1..).unwrap_or_default(),
        None => return HeaderIndex::new(),
    };
    let lines = memchr::memchr_iter(b'\n', fields).count();
    let mut slots = vec![httparse::EMPTY_HEADER; lines];
    match httparse::parse_headers(fields, &mut slots) {
        Ok(httparse::Status::Complete((_, parsed))) => parsed
            .iter()
            .map(|h| (offset(head, h.name.as_bytes()), offset(head, h.value)))
            .collect(),
        // Unreachable for a head parse_head accepted; a synthetic request
        // sets its index when it is built.
        Ok(httparse::Status::Partial) | Err(_) => HeaderIndex::new(),
    }
}

/// Splits an ASCII request target whose first `?` is at `q` (relative to
/// the target) into path, query and (absolute-form) authority ranges,
/// relative to the head. RFC 9112 §3.2.
#[allow(clippy::type_complexity)]
#[inline(always)]
fn split_target(
    target: &str,
    base: usize,
    q: Option<usize>,
) -> Result<(Range<usize>, Option<Range<usize>>, Option<Range<usize>>), ParseError> {
    // `q`, the first `?` of the whole target, starts the query: neither the
    // scheme nor the authority of an absolute-form target contains one.
    let (mut start, mut authority) = (0, None);
    if !target.starts_with('/') {
        if target == "*" {
            return Ok((base..base + 1, None, None));
        }
        // Absolute-form (S18): the server MUST accept it; its authority wins over Host.
        let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
        let scheme_len = if lower.starts_with("http://") {
            7
        } else if lower.starts_with("https://") {
            8
        } else {
            return Err(ParseError::InvalidTarget);
        };
        let rest = target.get(scheme_len..).unwrap_or_default();
        let auth_len = rest.find(['/', '?']).unwrap_or(rest.len());
        let auth = rest.get(..auth_len).unwrap_or_default();
        if auth.is_empty() || auth.contains('@') || !framing::is_valid_host(auth.as_bytes()) {
            return Err(ParseError::InvalidHost);
        }
        authority = Some(base + scheme_len..base + scheme_len + auth_len);
        start = scheme_len + auth_len;
    }
    let (path_end, query) = match q {
        Some(q) => (q.max(start), Some(base + q + 1..base + target.len())),
        None => (target.len(), None),
    };
    // `http://host` or `http://host?x` has an empty path; `Request::path`
    // reports it as "/".
    Ok((base + start..base + path_end, query, authority))
}

/// httparse says "bad version": 505 for a well-formed other major version, else 400 (S16).
fn version_error(buf: &[u8]) -> ParseError {
    let line_end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    let line = buf.get(..line_end).unwrap_or_default();
    match line.rsplit(|&b| b == b' ').next() {
        Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
            if major.is_ascii_digit() && minor.is_ascii_digit() && *major != b'1' =>
        {
            ParseError::UnsupportedVersion
        }
        Some([b'H', b'T', b'T', b'P', b'/', major]) if major.is_ascii_digit() && *major != b'1' => {
            ParseError::UnsupportedVersion
        }
        _ => ParseError::Malformed(httparse::Error::Version),
    }
}

/// True if a line of the head (before its blank line) starts with SP or HTAB.
fn has_obs_fold(buf: &[u8]) -> bool {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = buf.get(..end).unwrap_or_default();
    head.windows(2)
        .any(|w| w[0] == b'\n' && (w[1] == b' ' || w[1] == b'\t'))
}

/// The common-case line checks of [`framing::check_head_bytes`] done from
/// httparse's slices: every line ends in CRLF (S13), the request line and
/// each field line are within their limits (L1, L2). Returns false when the
/// head is unusual (leading empty lines, empty values, trailing whitespace)
/// or a check fails; the caller then runs the full scan, which reports the
/// exact error.
#[inline(always)]
fn lines_ok_fast(
    buf: &[u8],
    head: &[u8],
    headers: &[httparse::Header<'_>],
    limits: &Limits,
) -> bool {
    if head.first().is_none_or(|b| *b == b'\r' || *b == b'\n') || !head.ends_with(b"\r\n\r\n") {
        return false;
    }
    let base = buf.as_ptr() as usize;
    // PERF: httparse ended the request line right before the first field
    // line, so its end needs no scan (callgrind, pipeline_client.py --wrk-heads).
    let first_lf = match headers.first() {
        Some(h) => (h.name.as_ptr() as usize)
            .wrapping_sub(base)
            .wrapping_sub(1),
        None => match memchr::memchr(b'\n', head) {
            Some(i) => i,
            None => return false,
        },
    };
    if first_lf == 0
        || head.get(first_lf) != Some(&b'\n')
        || head.get(first_lf - 1) != Some(&b'\r')
        || first_lf - 1 > limits.max_request_line_bytes
    {
        return false;
    }
    let mut expect_start = first_lf + 1;
    for h in headers {
        if h.value.is_empty() {
            return false;
        }
        let name_start = (h.name.as_ptr() as usize).wrapping_sub(base);
        let value_end = (h.value.as_ptr() as usize)
            .wrapping_sub(base)
            .wrapping_add(h.value.len());
        // The line must start right after the previous one (no folded or
        // skipped lines) and be within L2; a value outside the line wraps
        // to a huge length.
        if name_start != expect_start
            || value_end.wrapping_sub(name_start) > limits.max_header_field_bytes
        {
            return false;
        }
        // A value holds no CR and httparse trimmed only SP/HTAB from it, so
        // a CR right after it ends the line, and httparse checked the LF
        // after that CR.
        if head.get(value_end) != Some(&b'\r') {
            return false;
        }
        expect_start = value_end + 2;
    }
    // Only the blank line may follow the last field line.
    expect_start + 2 == head.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(raw: &[u8]) -> bool {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 16];
        let mut r = httparse::Request::new(&mut []);
        let Ok(httparse::Status::Complete(len)) = r.parse_with_uninit_headers(raw, &mut slots)
        else {
            return false;
        };
        lines_ok_fast(raw, &raw[..len], r.headers, &Limits::default())
    }

    #[test]
    fn ordinary_heads_take_the_fast_path_and_odd_ones_the_full_scan() {
        assert!(fast(b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n"));
        assert!(!fast(b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n"), "bare LF");
        assert!(
            !fast(b"GET / HTTP/1.1\nHost: a\r\n\r\n"),
            "bare LF after the request line"
        );
        assert!(
            !fast(b"GET / HTTP/1.1\r\nHost: a \r\n\r\n"),
            "trailing whitespace"
        );
        assert!(
            !fast(b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            "leading empty line"
        );
        assert!(!fast(b"GET / HTTP/1.1\r\nHost:\r\n\r\n"), "empty value");
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(9000));
        assert!(!fast(long.as_bytes()), "field over the limit");
    }

    /// Heads the plain path should take, and from which the mutations start.
    const PLAIN_HEADS: &[&[u8]] = &[
        b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain,text/html;q=0.9,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n",
        b"POST /mcp?session=abc&x=1 HTTP/1.1\r\nHost: a:80\r\nContent-Length: 5\r\n\r\nhello",
        b"HEAD /a/b/c/d/e/f/g/h/i/j/k/l?q?r HTTP/1.0\r\n\r\n",
        b"DELETE /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"OPTIONS /? HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        b"PUT /v2/models/m/infer HTTP/1.1\r\nHost: h\r\n\r\n",
        b"PATCH / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\n",
        b"GET /x HTTP/1.1\r\nX-Odd_Name!#$%&'*+.^`|~09: \t  a b\r\nE:x\r\nHost: h\r\n\r\n",
    ];

    /// Every accepted head must come out of the plain path as it comes out
    /// of the full parse.
    fn assert_plain_agrees(raw: &[u8], limits: &Limits) -> bool {
        let plain = parse_plain(raw, limits);
        let taken = plain.is_some();
        if let Some(plain) = plain {
            let full = parse_any(raw, limits);
            assert_eq!(
                format!("{:?}", Ok::<_, ParseError>(Some(plain))),
                format!("{full:?}"),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        taken
    }

    #[test]
    fn the_plain_path_agrees_with_the_full_parse() {
        let default = Limits::default();
        for raw in PLAIN_HEADS {
            assert!(
                parse_plain(raw, &default).is_some(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let tight = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            l
        };
        let limits = [
            default.clone(),
            tight(|l| l.max_headers = 2),
            tight(|l| l.max_request_line_bytes = 20),
            tight(|l| l.max_head_bytes = 40),
            tight(|l| l.max_header_field_bytes = 12),
        ];
        let bytes = [
            b' ', b'?', b'\r', b'\n', b'\t', 0, 0x7f, 0x80, 0xff, b'a', b'/', b':', b'H', b'1',
            b'*', b'(', b'"', b'~', 0x1f,
        ];
        let many_fields = format!("GET / HTTP/1.1\r\nHost: h\r\n{}\r\n", "X: y\r\n".repeat(20));
        let mut cases: Vec<Vec<u8>> = vec![many_fields.into_bytes()];
        for raw in PLAIN_HEADS {
            for at in 0..raw.len() {
                cases.push(raw[..at].to_vec());
                let mut cut = raw.to_vec();
                cut.remove(at);
                cases.push(cut);
                for &b in &bytes {
                    let mut c = raw.to_vec();
                    c[at] = b;
                    cases.push(c.clone());
                    c.insert(at, b);
                    cases.push(c);
                }
            }
        }
        let mut taken = 0;
        for limits in &limits {
            for c in &cases {
                taken += usize::from(assert_plain_agrees(c, limits));
            }
        }
        // Not vacuous: many mutants are still plain requests.
        assert!(taken > 1000, "{taken} of {}", cases.len() * limits.len());
    }

    /// Random field blocks, built from the bytes that matter to the field
    /// reader, through both paths (a fixed xorshift seed: repeatable).
    #[test]
    fn random_field_lines_agree_with_the_full_parse() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        const NAME: &[u8] = b"aZ09-_!~|'Hh ;(\"\t:";
        const VALUE: &[u8] = b"aZ09 ,;=/*\t\x7f\x80\xff\x00\r\n:\"";
        let limits = [
            Limits::default(),
            Limits {
                max_header_field_bytes: 10,
                max_headers: 3,
                ..Limits::default()
            },
        ];
        let mut taken = 0;
        for _ in 0..40_000 {
            // HTTP/1.1 needs a Host (S-rules), so most heads carry one.
            let mut raw = if next(5) == 0 {
                b"GET /x HTTP/1.1\r\n".to_vec()
            } else {
                b"GET /x HTTP/1.1\r\nHost: h\r\n".to_vec()
            };
            for _ in 0..next(6) {
                for _ in 0..1 + next(6) {
                    raw.push(if next(4) == 0 {
                        NAME[next(NAME.len())]
                    } else {
                        b'x'
                    });
                }
                raw.push(b':');
                for _ in 0..next(3) {
                    raw.push(if next(2) == 0 { b' ' } else { b'\t' });
                }
                for _ in 0..next(20) {
                    raw.push(if next(4) == 0 {
                        VALUE[next(VALUE.len())]
                    } else {
                        b'v'
                    });
                }
                raw.extend_from_slice(if next(8) == 0 { b"\n" } else { b"\r\n" });
            }
            raw.extend_from_slice(b"\r\n");
            for l in &limits {
                taken += usize::from(assert_plain_agrees(&raw, l));
            }
        }
        assert!(taken > 10_000, "{taken}");
    }

    #[test]
    fn scan_value_agrees_with_the_plain_definition() {
        let naive = |b: &[u8], start: usize| {
            b.iter()
                .skip(start)
                .position(|c| !(0x20..=0x7e).contains(c))
                .map(|i| start + i)
        };
        let mut bufs: Vec<Vec<u8>> = Vec::new();
        for len in 0..40 {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            bufs.push(base.clone());
            for at in 0..len {
                for b in [0u8, 0x09, 0x0d, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xff] {
                    let mut c = base.clone();
                    c[at] = b;
                    bufs.push(c);
                }
            }
        }
        for b in &bufs {
            for start in 0..=b.len() {
                assert_eq!(scan_value(b, start), naive(b, start), "{b:?} from {start}");
            }
        }
    }

    #[test]
    fn scan_target_agrees_with_the_plain_definition() {
        let naive = |b: &[u8], start: usize| {
            let mut q = None;
            for (i, &c) in b.iter().enumerate().skip(start) {
                match c {
                    b' ' => return Some((i, q)),
                    b'?' if q.is_none() => q = Some(i),
                    0x21..=0x7e => {}
                    _ => return None,
                }
            }
            None
        };
        for len in 0..40 {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            for at in 0..len {
                for byte in [b' ', b'?', 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xff, 0, b'\r'] {
                    for second in [None, Some(b'?'), Some(b' '), Some(0xff)] {
                        let mut c = base.clone();
                        c[at] = byte;
                        if let Some(s) = second.filter(|_| at + 3 < len) {
                            c[at + 3] = s;
                        }
                        for start in [0, 1, 3] {
                            assert_eq!(scan_target(&c, start), naive(&c, start), "{c:?} {start}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_lazy_header_index_matches_the_fields() {
        let limits = Limits::default();
        for raw in [
            &b"GET / HTTP/1.1\r\nHost: a\r\nX-Y:  z \r\nEmpty:\r\n\r\n"[..],
            b"\r\n\r\nPOST /p?q HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
        ] {
            let (head, _) = parse_head(raw, &limits).unwrap().unwrap();
            let mut req = Request::default();
            head.fill(raw, &mut req);
            let got: Vec<(String, Vec<u8>)> = req
                .headers()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect();
            let mut slots = [httparse::EMPTY_HEADER; 8];
            let mut r = httparse::Request::new(&mut slots);
            r.parse(raw).unwrap();
            let want: Vec<(String, Vec<u8>)> = r
                .headers
                .iter()
                .map(|h| (h.name.to_string(), h.value.to_vec()))
                .collect();
            assert_eq!(got, want, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn short_and_long_targets_split_alike() {
        let pad = "x".repeat(80);
        for t in ["/", "/a", "/a?b", "/a?b?c", "/?", "/a?", "/é"] {
            let long = t.replacen('/', &format!("/{pad}"), 1);
            // As the full parse does: the scan over the target and its SP, then the split.
            let split = |t: &str| {
                let buf = format!("{t} ");
                let (_, q) = scan_target(buf.as_bytes(), 0).ok_or(ParseError::InvalidTarget)?;
                split_target(t, 10, q)
            };
            let short = split(t);
            let full = split(&long);
            match (short, full) {
                (Ok((p, q, a)), Ok((lp, lq, la))) => {
                    assert_eq!(p.start, lp.start, "{t}");
                    assert_eq!(p.end + pad.len(), lp.end, "{t}");
                    let shift =
                        |r: Option<Range<usize>>| r.map(|r| r.start + pad.len()..r.end + pad.len());
                    assert_eq!(shift(q), lq, "{t}");
                    assert_eq!(a, la, "{t}");
                }
                (Err(_), Err(_)) => assert!(!t.is_ascii()),
                (s, l) => panic!("{t}: {s:?} vs {l:?}"),
            }
        }
    }

    #[test]
    fn whatever_the_path_the_full_checks_still_decide() {
        let limits = Limits::default();
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", &limits),
            Err(ParseError::BareLf)
        ));
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &limits),
            Ok(Some(_))
        ));
    }
}
