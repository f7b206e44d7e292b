//! Request framing: how long a parsed head's body is, whether the connection
//! stays open, and byte-level checks on the raw head that httparse does not make.
//!
//! [`analyze`] applies SECURITY.md §2 (S1–S9, S17, S25, S28) to the header
//! fields httparse produced. [`check_head_bytes`] and [`check_partial_head`]
//! run on the raw head bytes before or beside httparse (S11, S13, L1, L2).
//!
//! Invariant: nothing here does I/O, allocates, or keeps state between calls.
//! Invariant: no framing is ever guessed; any doubt is an `Err` and the caller closes.
//! Invariant: `Transfer-Encoding` and `Content-Length` never both frame one request.
//! Invariant: no byte after the head's blank line is examined.

use super::error::ParseError;
use super::limits::Limits;

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: neither `Content-Length` nor `Transfer-Encoding` (S28). Any
    /// bytes after the head belong to the next request.
    None,
    /// Exactly this many bytes follow the head (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`; decode with `ChunkedDecoder`.
    Chunked,
}

/// The framing verdict for one request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// How the body is delimited.
    pub body: BodyKind,
    /// Whether the request allows the connection to stay open afterwards.
    /// HTTP/1.1: true unless `Connection` lists `close`. HTTP/1.0: false
    /// unless `Connection` lists `keep-alive` (and not `close`).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request. Always false for
    /// HTTP/1.0, which must ignore it (RFC 9110 §10.1.1).
    pub expect_continue: bool,
    /// The request is HTTP/1.0.
    pub http10: bool,
}

/// Largest valid port number (RFC 6335 §6: ports are 16-bit).
const MAX_PORT: u32 = 65_535;

/// Decides how the request with this version and these header fields is
/// framed, or why it cannot be.
///
/// `version` is httparse's minor version: 0 means HTTP/1.0, anything else is
/// treated as HTTP/1.1. `headers` are the fields httparse parsed, in order
/// (their names are tokens and their values hold no CR, which the
/// case-insensitive compare relies on; httparse has already trimmed SP and
/// HTAB from both ends of each value, which a unit test checks); names
/// compare case-insensitively.
///
/// Checks run in this order, so a head with several faults always gets the
/// same error: `Transfer-Encoding` in HTTP/1.0 ([`ParseError::TransferEncodingInHttp10`]),
/// `Content-Length` with `Transfer-Encoding` ([`ParseError::ContentLengthWithTransferEncoding`]),
/// the transfer codings ([`ParseError::UnknownTransferCoding`], [`ParseError::ChunkedNotLast`],
/// [`ParseError::ChunkedTwice`]), the content length ([`ParseError::InvalidContentLength`],
/// [`ParseError::ConflictingContentLength`]), `Host` ([`ParseError::MissingHost`],
/// [`ParseError::DuplicateHost`], [`ParseError::InvalidHost`]), then `Expect`
/// ([`ParseError::ExpectationFailed`]).
#[inline(always)]
pub fn analyze(version: u8, headers: &[httparse::Header<'_>]) -> Result<Framing, ParseError> {
    let http10 = version == 0;
    let mut te = TeList::default();
    let mut te_seen = false;
    let mut cl = ContentLength::default();
    let mut hosts = 0usize;
    let mut host_valid = true;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect_continue = false;
    let mut expect_unsupported = false;

    for h in headers {
        let name = h.name.as_bytes();
        // PERF: one length dispatch and a word-wise compare per field, and
        // values trimmed only for the fields we read (callgrind,
        // benches/load/pipeline_client.py --wrk-heads).
        let field = match name.len() {
            4 if token_eq(name, b"host") => Field::Host,
            6 if token_eq(name, b"expect") => Field::Expect,
            10 if token_eq(name, b"connection") => Field::Connection,
            14 if token_eq(name, b"content-length") => Field::ContentLength,
            17 if token_eq(name, b"transfer-encoding") => Field::TransferEncoding,
            _ => continue,
        };
        // PERF: no trim: httparse trims values (callgrind, pipeline_client.py:
        // 1,807 -> 1,774 instructions per request).
        let value = h.value;
        debug_assert_eq!(value, trim_ows(value));
        if field == Field::ContentLength {
            cl.add_field(value);
        } else if field == Field::TransferEncoding {
            // S8: the values of several TE lines form one list.
            te_seen = true;
            te.add_field(value);
        } else if field == Field::Host {
            hosts += 1;
            host_valid &= is_valid_host_cached(value);
        } else if field == Field::Connection {
            if token_eq(value, b"keep-alive") {
                conn_keep_alive = true;
            } else {
                for token in list_elements(value) {
                    conn_close |= token.eq_ignore_ascii_case(b"close");
                    conn_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        } else {
            // S25: the only expectation defined is 100-continue; answer anything else with 417.
            if value.eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                expect_unsupported = true;
            }
        }
    }

    let body = if te_seen {
        if http10 {
            // S9, RFC 9112 §6.1: TE in HTTP/1.0 means faulty framing, even with CL.
            return Err(ParseError::TransferEncodingInHttp10);
        }
        if cl.seen {
            // S1, RFC 9112 §6.1: reject CL + TE outright rather than prefer TE.
            return Err(ParseError::ContentLengthWithTransferEncoding);
        }
        te.verdict()?;
        BodyKind::Chunked
    } else {
        match cl.value()? {
            Some(n) => BodyKind::Length(n),
            // S28, RFC 9112 §6.3(7): no CL and no TE means no body.
            None => BodyKind::None,
        }
    };

    // S17, RFC 9112 §3.2: HTTP/1.1 needs exactly one valid Host; HTTP/1.0 may omit it.
    if hosts == 0 && !http10 {
        return Err(ParseError::MissingHost);
    }
    if hosts > 1 {
        return Err(ParseError::DuplicateHost);
    }
    if !host_valid {
        return Err(ParseError::InvalidHost);
    }
    if expect_unsupported {
        return Err(ParseError::ExpectationFailed);
    }

    Ok(Framing {
        body,
        keep_alive: if http10 {
            conn_keep_alive && !conn_close
        } else {
            !conn_close
        },
        // RFC 9110 §10.1.1: a 100-continue expectation in HTTP/1.0 MUST be ignored.
        expect_continue: expect_continue && !http10,
        http10,
    })
}

/// The header fields that decide framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    ContentLength,
    TransferEncoding,
    Host,
    Connection,
    Expect,
}

/// `a` equals `lower` (lowercase letters, digits and `-`) ignoring ASCII
/// case, for `a` made of token characters or field-value bytes.
///
/// OR-ing 0x20 into a byte maps an uppercase letter to its lowercase and
/// leaves lowercase letters, digits and `-` alone. The only other byte that
/// maps onto one of `lower`'s is CR (0x0D → `-`), which neither a token nor
/// a field value (httparse, RFC 9110 §5.5) contains. Compared 8 or 4 bytes
/// at a time, the last word overlapping the one before.
fn token_eq(a: &[u8], lower: &[u8]) -> bool {
    let n = a.len();
    if n != lower.len() {
        return false;
    }
    if n < 4 {
        return a.eq_ignore_ascii_case(lower);
    }
    if n < 8 {
        const M: u32 = 0x2020_2020;
        return (word4(a, 0) | M) == (word4(lower, 0) | M)
            && (word4(a, n - 4) | M) == (word4(lower, n - 4) | M);
    }
    const M: u64 = 0x2020_2020_2020_2020;
    let mut at = 0;
    while at + 8 < n {
        if (word8(a, at) | M) != (word8(lower, at) | M) {
            return false;
        }
        at += 8;
    }
    (word8(a, n - 8) | M) == (word8(lower, n - 8) | M)
}

/// `a == b`, compared 8 bytes at a time (the last word overlapping the
/// one before) without a call to memcmp: cheaper for the short strings of
/// a head (callgrind, benches/load/pipeline_client.py).
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 4 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    if n < 8 {
        return word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4);
    }
    let mut at = 0;
    while at + 8 < n {
        if word8(a, at) != word8(b, at) {
            return false;
        }
        at += 8;
    }
    word8(a, n - 8) == word8(b, n - 8)
}

/// The 8 bytes of `b` at `at` as a little-endian word (0 past the end).
fn word8(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|w| w.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// The 4 bytes of `b` at `at` as a little-endian word (0 past the end).
fn word4(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|w| w.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// Whether `value` is a valid `Host` field value: `uri-host [ ":" port ]`
/// (RFC 9112 §3.2, RFC 3986 §3.2.2), with no surrounding whitespace.
///
/// `uri-host` is a non-empty reg-name (unreserved, pct-encoded and sub-delims
/// characters; this also covers IPv4 addresses) or a bracketed IPv6 address.
/// `port` is 1 to 5 digits with a value of at most 65535. The empty value is
/// valid: RFC 9112 §3.2 has clients send it when the target has no authority.
/// IPvFuture literals, IPv6 zone identifiers, `host:` with an empty port and
/// `:port` with an empty host are rejected.
pub fn is_valid_host(value: &[u8]) -> bool {
    if value.is_empty() {
        return true;
    }
    let port = if let Some(rest) = value.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let (literal, after) = rest.split_at(close);
        if !is_ipv6(literal) {
            return false;
        }
        match after.strip_prefix(b"]") {
            Some([]) => return true,
            Some([b':', port @ ..]) => port,
            Some(_) | None => return false,
        }
    } else {
        let (host, port) = match value.iter().position(|&b| b == b':') {
            Some(colon) => {
                let (host, port) = value.split_at(colon);
                (host, port.strip_prefix(b":"))
            }
            None => (value, None),
        };
        if !is_reg_name(host) {
            return false;
        }
        match port {
            Some(port) => port,
            None => return true,
        }
    };
    is_port(port)
}

/// A Host value of 8 to 32 bytes as an exact key: its length and the
/// words at 0, 8, 16 and `len - 8` (a word past the end reads as 0; the
/// last word covers what those miss). With the length, equal keys mean
/// equal values. `None` for other lengths.
fn host_key(value: &[u8]) -> Option<[u64; 5]> {
    let n = value.len();
    (8..=32).contains(&n).then(|| {
        [
            n as u64,
            word8(value, 0),
            word8(value, 8),
            word8(value, 16),
            word8(value, n - 8),
        ]
    })
}

thread_local! {
    /// The key of the last Host value this thread found valid: clients send
    /// the same Host on every request, so most requests skip the grammar.
    static LAST_VALID_HOST: std::cell::Cell<[u64; 5]> = const { std::cell::Cell::new([0; 5]) };
}

/// [`is_valid_host`], remembering the last valid value per thread when it
/// has a [`host_key`] (names like `localhost:8080` or `api.example.com`).
// PERF: five word compares against a `Cell`, inlined; the remembered `Vec`
// behind a `RefCell` cost ~46 instructions per request with its call
// (callgrind, benches/load/pipeline_client.py --wrk-heads: 1,764 -> 1,747).
// Hosts of other lengths run the grammar every time.
#[inline(always)]
fn is_valid_host_cached(value: &[u8]) -> bool {
    let Some(key) = host_key(value) else {
        return is_valid_host(value);
    };
    let last = LAST_VALID_HOST.with(|c| c.get());
    // Not `==`: an array compare calls memcmp.
    if last.iter().zip(&key).fold(0, |d, (a, b)| d | (a ^ b)) == 0 {
        return true;
    }
    remember_valid_host(value, key)
}

#[cold]
fn remember_valid_host(value: &[u8], key: [u64; 5]) -> bool {
    let ok = is_valid_host(value);
    if ok {
        LAST_VALID_HOST.with(|c| c.set(key));
    }
    ok
}

/// Checks a complete raw head for what httparse accepts but we reject.
///
/// `head` runs from the first byte of the request up to and including the
/// blank line that ends the head; bytes after that blank line are not looked
/// at, so passing the whole read buffer is fine. Empty lines before the
/// request line are tolerated (RFC 9112 §2.2) but count towards the request
/// line's length. Lengths exclude the CRLF.
///
/// Errors, in the order they are found line by line:
/// [`ParseError::BareLf`] for a line ending in LF without CR (S13),
/// [`ParseError::RequestLineTooLong`] over `max_request_line_bytes` (L1),
/// [`ParseError::ObsFold`] for a field line starting with SP or HTAB (S11),
/// [`ParseError::HeaderFieldTooLarge`] for a field line over
/// `max_header_field_bytes` (L2); then [`ParseError::HeadTooLarge`] if the
/// head is longer than `max_head_bytes` (L2). If `head` has no blank line, the
/// unterminated last line is checked as by [`check_partial_head`].
pub fn check_head_bytes(head: &[u8], limits: &Limits) -> Result<(), ParseError> {
    // PERF: one forward pass; each line costs one `position` for its LF.
    let mut rest = head;
    let mut offset = 0usize;
    let mut in_fields = false;
    while let Some(lf) = memchr::memchr(b'\n', rest) {
        let (line, tail) = rest.split_at(lf);
        let line_end = offset + lf;
        offset = line_end + 1;
        rest = tail.strip_prefix(b"\n").unwrap_or(tail);
        // S13, RFC 9112 §2.2: we do not recognise a bare LF as a line terminator.
        let Some(content) = line.strip_suffix(b"\r") else {
            return Err(ParseError::BareLf);
        };
        if !in_fields {
            // The request line's length runs from the start of the head, so
            // tolerated leading empty lines cannot grow it without bound.
            if line_end.saturating_sub(1) > limits.max_request_line_bytes {
                return Err(ParseError::RequestLineTooLong);
            }
            in_fields = !content.is_empty();
            continue;
        }
        match content.first() {
            None => {
                return if offset > limits.max_head_bytes {
                    Err(ParseError::HeadTooLarge)
                } else {
                    Ok(())
                };
            }
            // S11, RFC 9112 §5.2: reject obs-fold rather than unfold it.
            Some(b' ' | b'\t') => return Err(ParseError::ObsFold),
            Some(_) => {}
        }
        if content.len() > limits.max_header_field_bytes {
            return Err(ParseError::HeaderFieldTooLarge);
        }
    }
    check_partial_head(head, limits)
}

/// Checks a head that is not complete yet (no blank line so far), so that an
/// oversized head is refused before it is all buffered.
///
/// Returns [`ParseError::RequestLineTooLong`] if the request line (counted
/// from the start of `partial`, including tolerated leading empty lines) has
/// no CRLF within `max_request_line_bytes`, [`ParseError::HeaderFieldTooLarge`]
/// if the field line still in progress is longer than `max_header_field_bytes`,
/// and [`ParseError::HeadTooLarge`] if `partial` is longer than `max_head_bytes`.
/// A trailing CR whose LF has not arrived yet does not count.
///
/// Complete field lines are not re-checked here; [`check_head_bytes`] checks
/// them once the head is complete. Each call looks at no more than about
/// `max_request_line_bytes + max_header_field_bytes` bytes, whatever the
/// length of `partial`, so calling it after every read stays cheap.
pub fn check_partial_head(partial: &[u8], limits: &Limits) -> Result<(), ParseError> {
    // PERF: nothing can be over a limit while the whole buffer is shorter than each of them.
    let smallest = limits
        .max_request_line_bytes
        .min(limits.max_header_field_bytes)
        .min(limits.max_head_bytes);
    if partial.len() <= smallest {
        return Ok(());
    }
    if request_line_end(partial, limits.max_request_line_bytes).is_some() {
        let window = limits.max_header_field_bytes.saturating_add(2);
        let since_lf = partial.iter().rev().take(window).position(|&b| b == b'\n');
        let in_progress = match since_lf {
            Some(n) => n,
            None => partial.len().min(window),
        };
        let ends_cr = partial.last() == Some(&b'\r') && in_progress > 0;
        if in_progress - usize::from(ends_cr) > limits.max_header_field_bytes {
            return Err(ParseError::HeaderFieldTooLarge);
        }
    } else {
        let ends_cr = partial.last() == Some(&b'\r');
        if partial.len() - usize::from(ends_cr) > limits.max_request_line_bytes {
            return Err(ParseError::RequestLineTooLong);
        }
    }
    if partial.len() > limits.max_head_bytes {
        return Err(ParseError::HeadTooLarge);
    }
    Ok(())
}

/// Index of the LF ending the request line, looking at most at the first
/// `max_request_line_bytes + 2` bytes. LFs that end empty lines before the
/// request line are skipped.
fn request_line_end(bytes: &[u8], max_request_line_bytes: usize) -> Option<usize> {
    let window = max_request_line_bytes.saturating_add(2);
    let mut line_start = 0usize;
    for (i, &b) in bytes.iter().enumerate().take(window) {
        if b == b'\n' {
            let len = i - line_start;
            let empty = len == 0 || (len == 1 && bytes.get(line_start) == Some(&b'\r'));
            if !empty {
                return Some(i);
            }
            line_start = i + 1;
        }
    }
    None
}

/// The kind of one transfer coding in a `Transfer-Encoding` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    /// `chunked`, any case.
    Chunked,
    /// A registered content coding we do not implement (gzip and friends).
    Known,
    /// Anything else, including `identity` (removed by RFC 9112).
    Unknown,
}

impl Coding {
    fn classify(element: &[u8]) -> Coding {
        const KNOWN: [&[u8]; 5] = [b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress"];
        if element.eq_ignore_ascii_case(b"chunked") {
            Coding::Chunked
        } else if KNOWN.iter().any(|k| element.eq_ignore_ascii_case(k)) {
            Coding::Known
        } else {
            Coding::Unknown
        }
    }
}

/// The `Transfer-Encoding` list so far, across all TE lines.
#[derive(Debug, Default)]
struct TeList {
    /// The last coding seen; `None` if every element so far was empty.
    last: Option<Coding>,
    /// How many times `chunked` appeared.
    chunked: usize,
    /// Whether any coding other than `chunked` appeared.
    other: bool,
}

impl TeList {
    fn add_field(&mut self, value: &[u8]) {
        // S8, RFC 9110 §5.6.1: empty list elements are ignored.
        for element in list_elements(value) {
            let coding = Coding::classify(element);
            match coding {
                Coding::Chunked => self.chunked += 1,
                Coding::Known | Coding::Unknown => self.other = true,
            }
            self.last = Some(coding);
        }
    }

    /// `Ok` if the list frames the body as chunked, else why not.
    fn verdict(&self) -> Result<(), ParseError> {
        match self.last {
            // A TE field whose list is empty gives no final coding at all:
            // the framing is in doubt, so treat it like a non-chunked final coding.
            None => Err(ParseError::ChunkedNotLast),
            // S6, RFC 9112 §6.1: a final coding we do not know → 501.
            Some(Coding::Unknown) => Err(ParseError::UnknownTransferCoding),
            // S5, RFC 9112 §6.3(4): a known final coding that is not chunked → 400.
            Some(Coding::Known) => Err(ParseError::ChunkedNotLast),
            // S7, RFC 9112 §6.1: chunked MUST NOT be applied more than once.
            Some(Coding::Chunked) if self.chunked > 1 => Err(ParseError::ChunkedTwice),
            // S6: we implement no coding but chunked (`gzip, chunked` → 501).
            Some(Coding::Chunked) if self.other => Err(ParseError::UnknownTransferCoding),
            Some(Coding::Chunked) => Ok(()),
        }
    }
}

/// Every `Content-Length` value so far, across all CL lines.
#[derive(Debug)]
struct ContentLength {
    /// Whether any `Content-Length` field was present, valid or not.
    seen: bool,
    /// The first error found, or the one value all elements agreed on.
    state: Result<Option<u64>, ParseError>,
}

impl Default for ContentLength {
    fn default() -> Self {
        ContentLength {
            seen: false,
            state: Ok(None),
        }
    }
}

impl ContentLength {
    fn add_field(&mut self, value: &[u8]) {
        self.seen = true;
        // S2/S3, RFC 9110 §8.6: a list of identical values is that value; an
        // empty element (`3,` or an empty field) is not 1*DIGIT, so S4 applies.
        for element in value.split(|&b| b == b',') {
            let Ok(previous) = self.state else {
                return;
            };
            self.state = match (parse_digits(trim_ows(element)), previous) {
                (Err(e), _) => Err(e),
                (Ok(n), None) => Ok(Some(n)),
                (Ok(n), Some(m)) if n == m => Ok(Some(m)),
                (Ok(_), Some(_)) => Err(ParseError::ConflictingContentLength),
            };
        }
    }

    fn value(&self) -> Result<Option<u64>, ParseError> {
        self.state
    }
}

/// Parses `1*DIGIT` into a u64 (S4, RFC 9110 §8.6: guard against overflow).
fn parse_digits(digits: &[u8]) -> Result<u64, ParseError> {
    if digits.is_empty() {
        return Err(ParseError::InvalidContentLength);
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return Err(ParseError::InvalidContentLength);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(ParseError::InvalidContentLength)
    })
}

/// The non-empty, OWS-trimmed elements of a comma-separated list.
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// `value` without leading and trailing SP/HTAB (RFC 9110 §5.5).
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    // PERF: httparse trims most values already; look at the ends before
    // walking (callgrind, benches/load/pipeline_client.py).
    if value.first().is_none_or(|b| !is_ows(b)) && value.last().is_none_or(|b| !is_ows(b)) {
        return value;
    }
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    value.get(start..end).unwrap_or_default()
}

/// RFC 3986 reg-name, non-empty: unreserved / pct-encoded / sub-delims.
/// reg-name characters other than `%` (RFC 3986 §3.2.2: unreserved / sub-delims).
const REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        i += 1;
    }
    t
};

fn is_reg_name(host: &[u8]) -> bool {
    if host.is_empty() {
        return false;
    }
    // PERF: one table lookup per byte (benches/parse.rs browser_get).
    let mut bytes = host.iter();
    while let Some(&b) = bytes.next() {
        let ok = if b == b'%' {
            matches!(
                (bytes.next(), bytes.next()),
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit()
            )
        } else {
            REG_NAME[b as usize]
        };
        if !ok {
            return false;
        }
    }
    true
}

/// An IPv6 address as it appears between brackets, without a zone identifier.
fn is_ipv6(literal: &[u8]) -> bool {
    std::str::from_utf8(literal)
        .ok()
        .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
        .is_some()
}

/// 1 to 5 digits, at most 65535.
fn is_port(port: &[u8]) -> bool {
    if port.is_empty() || port.len() > 5 {
        return false;
    }
    port.iter()
        .try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
        .is_some_and(|n| n <= MAX_PORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_eq_is_slice_equality() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(7)).collect();
            assert!(bytes_eq(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 1;
                assert!(!bytes_eq(&a, &b), "{n} {at}");
            }
            assert!(!bytes_eq(&a, &[a.as_slice(), b"x"].concat()));
        }
    }

    #[test]
    fn token_eq_is_eq_ignore_ascii_case_for_tokens_and_values() {
        let words: [&[u8]; 7] = [
            b"host",
            b"expect",
            b"connection",
            b"content-length",
            b"transfer-encoding",
            b"keep-alive",
            b"te",
        ];
        for w in words {
            assert!(token_eq(w, w));
            assert!(token_eq(&w.to_ascii_uppercase(), w));
            // Flip the case of, then change, each byte in turn.
            for i in 0..w.len() {
                let mut v = w.to_vec();
                v[i] = v[i].to_ascii_uppercase();
                assert!(token_eq(&v, w), "{}", String::from_utf8_lossy(&v));
                for b in (0u8..=255).filter(|b| !b.eq_ignore_ascii_case(&w[i])) {
                    v[i] = b;
                    assert_eq!(
                        token_eq(&v, w),
                        b == b'\r' && w[i] == b'-',
                        "{:?} vs {}",
                        v,
                        String::from_utf8_lossy(w)
                    );
                }
            }
            assert!(!token_eq(&w[1..], w));
        }
    }

    type Fields<'a> = &'a [(&'a str, &'a [u8])];

    /// Runs `analyze` on the given version and fields, their values
    /// trimmed as httparse trims them.
    fn run(version: u8, fields: Fields<'_>) -> Result<Framing, ParseError> {
        let headers: Vec<httparse::Header<'_>> = fields
            .iter()
            .map(|&(name, value)| httparse::Header {
                name,
                value: trim_ows(value),
            })
            .collect();
        analyze(version, &headers)
    }

    #[test]
    fn host_keys_are_exact_and_the_cache_never_admits_an_invalid_host() {
        let base = b"abcdefghijklmnopqrstuvwxyz012345";
        for n in 8..=32 {
            let v = &base[..n];
            let key = host_key(v).unwrap();
            for at in 0..n {
                let mut w = v.to_vec();
                w[at] = b'_';
                assert_ne!(host_key(&w), Some(key), "{n} {at}");
            }
            // A prefix of the same bytes: another key.
            if n > 8 {
                assert_ne!(host_key(&base[..n - 1]), Some(key), "{n}");
            }
        }
        assert_eq!(host_key(b"short"), None);
        assert_eq!(host_key(&[b'a'; 33]), None);
        // The cache holds the last valid value; an invalid one of the same
        // length is still checked and rejected, before and after.
        assert!(is_valid_host_cached(b"localhost:8080"));
        assert!(is_valid_host_cached(b"localhost:8080"));
        assert!(!is_valid_host_cached(b"localhost:80 0"));
        assert!(!is_valid_host_cached(b"localhost:99999"));
        assert!(is_valid_host_cached(b"localhost:8080"));
        assert!(!is_valid_host_cached(b"a b"));
        assert!(is_valid_host_cached(b"a"));
    }

    #[test]
    fn httparse_trims_the_values_analyze_reads() {
        for raw in [
            &b"GET / HTTP/1.1\r\nHost: \t a b \t\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost:a b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:\ta b\t\t\r\n\r\n",
        ] {
            let mut slots = [httparse::EMPTY_HEADER; 4];
            let mut req = httparse::Request::new(&mut slots);
            req.parse(raw).unwrap();
            assert_eq!(req.headers[0].value, b"a b");
        }
        let mut slots = [httparse::EMPTY_HEADER; 4];
        let mut req = httparse::Request::new(&mut slots);
        req.parse(b"GET / HTTP/1.1\r\nX: \t \r\n\r\n").unwrap();
        assert_eq!(req.headers[0].value, b"");
    }

    /// HTTP/1.1 framing with default connection handling.
    fn ok11(body: BodyKind) -> Result<Framing, ParseError> {
        Ok(Framing {
            body,
            keep_alive: true,
            expect_continue: false,
            http10: false,
        })
    }

    #[track_caller]
    fn check_all(version: u8, cases: &[(Fields<'_>, Result<Framing, ParseError>)]) {
        for (fields, want) in cases {
            assert_eq!(&run(version, fields), want, "fields: {fields:?}");
        }
    }

    #[track_caller]
    fn check_errors(version: u8, cases: &[Fields<'_>], want: ParseError) {
        for fields in cases {
            assert_eq!(run(version, fields), Err(want), "fields: {fields:?}");
        }
    }

    const H: (&str, &[u8]) = ("Host", b"a");

    #[test]
    fn te_and_cl_together_is_400() {
        check_errors(
            1,
            &[
                &[
                    H,
                    ("Content-Length", b"3"),
                    ("Transfer-Encoding", b"chunked"),
                ],
                &[
                    H,
                    ("Transfer-Encoding", b"chunked"),
                    ("Content-Length", b"3"),
                ],
                &[
                    H,
                    ("content-length", b"0"),
                    ("transfer-encoding", b"chunked"),
                ],
                // The combination wins over a bad value on either side.
                &[
                    H,
                    ("Content-Length", b"x"),
                    ("Transfer-Encoding", b"chunked"),
                ],
                &[H, ("Content-Length", b"3"), ("Transfer-Encoding", b"gzip")],
            ],
            ParseError::ContentLengthWithTransferEncoding,
        );
        assert_eq!(ParseError::ContentLengthWithTransferEncoding.status(), 400);
    }

    #[test]
    fn differing_content_lengths_are_conflicting() {
        check_errors(
            1,
            &[
                &[H, ("Content-Length", b"3"), ("Content-Length", b"4")],
                &[H, ("Content-Length", b"3, 4")],
                &[H, ("Content-Length", b"3,4")],
                &[H, ("Content-Length", b"3, 3"), ("Content-Length", b"4")],
                &[H, ("Content-Length", b"0"), ("content-length", b"1")],
            ],
            ParseError::ConflictingContentLength,
        );
    }

    #[test]
    fn identical_content_lengths_are_accepted_as_one() {
        // S3: we pick the RFC 9110 §8.6 reading and accept, like h11.
        check_all(
            1,
            &[
                (
                    &[H, ("Content-Length", b"3"), ("Content-Length", b"3")],
                    ok11(BodyKind::Length(3)),
                ),
                (&[H, ("Content-Length", b"3, 3")], ok11(BodyKind::Length(3))),
                (
                    &[H, ("Content-Length", b"3,3,3")],
                    ok11(BodyKind::Length(3)),
                ),
                (
                    &[H, ("Content-Length", b"3 ,\t3")],
                    ok11(BodyKind::Length(3)),
                ),
                // Values compare as numbers: 03 and 3 are the same length.
                (
                    &[H, ("Content-Length", b"03"), ("Content-Length", b"3")],
                    ok11(BodyKind::Length(3)),
                ),
            ],
        );
    }

    #[test]
    fn valid_content_length_gives_length_body() {
        check_all(
            1,
            &[
                (&[H, ("Content-Length", b"0")], ok11(BodyKind::Length(0))),
                (&[H, ("Content-Length", b"42")], ok11(BodyKind::Length(42))),
                (
                    &[H, ("Content-Length", b" 42\t")],
                    ok11(BodyKind::Length(42)),
                ),
                (&[H, ("CONTENT-LENGTH", b"7")], ok11(BodyKind::Length(7))),
                (&[H, ("Content-Length", b"007")], ok11(BodyKind::Length(7))),
                (
                    &[H, ("Content-Length", b"18446744073709551615")],
                    ok11(BodyKind::Length(u64::MAX)),
                ),
            ],
        );
    }

    #[test]
    fn content_length_not_digits_or_overflowing_is_invalid() {
        let bad: [&[u8]; 17] = [
            b"+3",
            b"-1",
            b"0x3",
            b"3 4",
            b"",
            b"  ",
            b"1_0",
            b"3.0",
            b"3,",
            b",3",
            b"3, ,3",
            b"18446744073709551616",
            b"99999999999999999999999",
            b"\xd9\xa3",
            b"3\x0b",
            b"three",
            b"\"3\"",
        ];
        for value in bad {
            assert_eq!(
                run(1, &[H, ("Content-Length", value)]),
                Err(ParseError::InvalidContentLength),
                "value: {:?}",
                String::from_utf8_lossy(value)
            );
        }
        // An invalid value is invalid even next to a valid one, in either order.
        check_errors(
            1,
            &[
                &[H, ("Content-Length", b"3"), ("Content-Length", b"+3")],
                &[H, ("Content-Length", b"x"), ("Content-Length", b"3")],
            ],
            ParseError::InvalidContentLength,
        );
    }

    #[test]
    fn final_coding_not_chunked_is_400() {
        check_errors(
            1,
            &[
                &[H, ("Transfer-Encoding", b"gzip")],
                &[H, ("Transfer-Encoding", b"chunked, gzip")],
                &[H, ("Transfer-Encoding", b"deflate")],
                &[H, ("Transfer-Encoding", b"x-gzip")],
                &[
                    H,
                    ("Transfer-Encoding", b"chunked"),
                    ("Transfer-Encoding", b"gzip"),
                ],
                // A TE field with no coding at all cannot frame anything.
                &[H, ("Transfer-Encoding", b"")],
                &[H, ("Transfer-Encoding", b" , ,")],
            ],
            ParseError::ChunkedNotLast,
        );
        assert_eq!(ParseError::ChunkedNotLast.status(), 400);
    }

    #[test]
    fn unknown_transfer_coding_is_501() {
        check_errors(
            1,
            &[
                &[H, ("Transfer-Encoding", b"xchunked")],
                &[H, ("Transfer-Encoding", b"identity")],
                &[H, ("Transfer-Encoding", b"chunkedx")],
                &[H, ("Transfer-Encoding", b"chunked, identity")],
                &[H, ("Transfer-Encoding", b"\"chunked\"")],
                &[H, ("Transfer-Encoding", b"chunked;foo=bar")],
                &[H, ("Transfer-Encoding", b"chunked\x0b")],
                // Known codings we do not implement, applied before chunked.
                &[H, ("Transfer-Encoding", b"gzip, chunked")],
                &[H, ("Transfer-Encoding", b"identity, chunked")],
                &[
                    H,
                    ("Transfer-Encoding", b"gzip"),
                    ("Transfer-Encoding", b"chunked"),
                ],
            ],
            ParseError::UnknownTransferCoding,
        );
        assert_eq!(ParseError::UnknownTransferCoding.status(), 501);
    }

    #[test]
    fn chunked_applied_twice_is_400() {
        check_errors(
            1,
            &[
                &[H, ("Transfer-Encoding", b"chunked, chunked")],
                &[H, ("Transfer-Encoding", b"Chunked,CHUNKED")],
                &[
                    H,
                    ("Transfer-Encoding", b"chunked"),
                    ("Transfer-Encoding", b"chunked"),
                ],
                &[H, ("Transfer-Encoding", b"gzip, chunked, chunked")],
                &[H, ("Transfer-Encoding", b"chunked, gzip, chunked")],
            ],
            ParseError::ChunkedTwice,
        );
    }

    #[test]
    fn te_list_quirks_are_valid_chunked() {
        let chunked = ok11(BodyKind::Chunked);
        check_all(
            1,
            &[
                (&[H, ("Transfer-Encoding", b"chunked")], chunked),
                (&[H, ("Transfer-Encoding", b"Chunked")], chunked),
                (&[H, ("Transfer-Encoding", b"CHUNKED")], chunked),
                (&[H, ("Transfer-Encoding", b" chunked ")], chunked),
                (&[H, ("Transfer-Encoding", b"\tchunked")], chunked),
                (&[H, ("Transfer-Encoding", b", chunked")], chunked),
                (&[H, ("Transfer-Encoding", b"chunked,")], chunked),
                (&[H, ("Transfer-Encoding", b" , chunked , ,")], chunked),
                (&[H, ("transfer-encoding", b"chunked")], chunked),
                (
                    &[
                        H,
                        ("Transfer-Encoding", b""),
                        ("Transfer-Encoding", b"chunked"),
                    ],
                    chunked,
                ),
            ],
        );
    }

    #[test]
    fn transfer_encoding_in_http10_is_400_even_with_cl() {
        check_errors(
            0,
            &[
                &[("Transfer-Encoding", b"chunked")],
                &[
                    H,
                    ("Transfer-Encoding", b"chunked"),
                    ("Content-Length", b"3"),
                ],
                &[("Content-Length", b"3"), ("Transfer-Encoding", b"chunked")],
                &[("Transfer-Encoding", b"gzip")],
                &[("Transfer-Encoding", b"")],
            ],
            ParseError::TransferEncodingInHttp10,
        );
    }

    #[test]
    fn host_rules_for_http11() {
        check_errors(
            1,
            &[&[], &[("Content-Length", b"3")], &[("X-Host", b"a")]],
            ParseError::MissingHost,
        );
        check_errors(
            1,
            &[
                &[H, H],
                &[("Host", b"a"), ("host", b"b")],
                &[("Host", b""), ("Host", b"")],
            ],
            ParseError::DuplicateHost,
        );
        check_errors(
            1,
            &[
                &[("Host", b"a b")],
                &[("Host", b"a/b")],
                &[("Host", b"a:b")],
                &[("Host", b"user@a")],
                &[("Host", b"[::1")],
            ],
            ParseError::InvalidHost,
        );
        check_all(
            1,
            &[
                (&[("Host", b"")], ok11(BodyKind::None)),
                (&[("Host", b" example.com:8080 ")], ok11(BodyKind::None)),
                (&[("HOST", b"[::1]:80")], ok11(BodyKind::None)),
            ],
        );
    }

    #[test]
    fn host_rules_for_http10() {
        let ok10 = Ok(Framing {
            body: BodyKind::None,
            keep_alive: false,
            expect_continue: false,
            http10: true,
        });
        check_all(0, &[(&[], ok10), (&[H], ok10), (&[("Host", b"")], ok10)]);
        check_errors(0, &[&[("Host", b"a b")]], ParseError::InvalidHost);
        check_errors(0, &[&[H, H]], ParseError::DuplicateHost);
    }

    #[test]
    fn host_validation_follows_rfc3986_authority() {
        let valid: [&[u8]; 20] = [
            b"",
            b"example.com",
            b"EXAMPLE.COM",
            b"example.com:8080",
            b"a:0",
            b"localhost:65535",
            b"a:00080",
            b"127.0.0.1",
            b"127.0.0.1:80",
            b"999.1.1.1",
            b"[::1]",
            b"[::1]:443",
            b"[2001:db8::1]",
            b"[::ffff:1.2.3.4]:8",
            b"xn--bcher-kva.example",
            b"a%20b",
            b"a%2f",
            b"sub!$&'()*+,;=",
            b"_srv-1.ex~ample",
            b"a-b",
        ];
        for v in valid {
            assert!(
                is_valid_host(v),
                "should be valid: {:?}",
                String::from_utf8_lossy(v)
            );
        }
        let invalid: [&[u8]; 31] = [
            b" example.com",
            b"example.com ",
            b"a b",
            b"a\tb",
            b"a:b",
            b"a:",
            b":80",
            b":",
            b"a:65536",
            b"a:123456",
            b"a:-1",
            b"a:+1",
            b"a:80:80",
            b"[::1",
            b"::1",
            b"[::1]x",
            b"[::1]:",
            b"[::1]:x",
            b"[]",
            b"[fe80::1%25eth0]",
            b"[v1.fe]",
            b"[1.2.3.4]",
            b"a/b",
            b"a?b",
            b"a#b",
            b"user@host",
            b"%zz",
            b"a%2",
            b"a%",
            b"\xc3\xa9",
            b"a\0",
        ];
        for v in invalid {
            assert!(
                !is_valid_host(v),
                "should be invalid: {:?}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn expect_other_than_100_continue_is_417() {
        check_errors(
            1,
            &[
                &[H, ("Expect", b"foo")],
                &[H, ("Expect", b"")],
                &[H, ("Expect", b"100-continue, foo")],
                &[H, ("Expect", b"100-continue"), ("Expect", b"200-ok")],
                &[H, ("Expect", b"100-continuex")],
            ],
            ParseError::ExpectationFailed,
        );
        // HTTP/1.0 ignores 100-continue but still refuses unknown expectations.
        check_errors(0, &[&[("Expect", b"foo")]], ParseError::ExpectationFailed);
        assert_eq!(ParseError::ExpectationFailed.status(), 417);
    }

    #[test]
    fn expect_100_continue_is_flagged_only_for_http11() {
        let cont = Ok(Framing {
            body: BodyKind::Length(3),
            keep_alive: true,
            expect_continue: true,
            http10: false,
        });
        check_all(
            1,
            &[
                (
                    &[H, ("Content-Length", b"3"), ("Expect", b"100-continue")],
                    cont,
                ),
                (
                    &[H, ("Content-Length", b"3"), ("expect", b"100-Continue")],
                    cont,
                ),
                (
                    &[H, ("Content-Length", b"3"), ("Expect", b" 100-CONTINUE ")],
                    cont,
                ),
            ],
        );
        let ignored = Ok(Framing {
            body: BodyKind::Length(3),
            keep_alive: false,
            expect_continue: false,
            http10: true,
        });
        check_all(
            0,
            &[(
                &[("Content-Length", b"3"), ("Expect", b"100-continue")],
                ignored,
            )],
        );
    }

    #[test]
    fn keep_alive_follows_version_and_connection_tokens() {
        let ka = |version: u8, fields: Fields<'_>| run(version, fields).map(|f| f.keep_alive);
        let cases: &[(u8, Fields<'_>, bool)] = &[
            (1, &[H], true),
            (1, &[H, ("Connection", b"close")], false),
            (1, &[H, ("connection", b"Close")], false),
            (1, &[H, ("Connection", b"keep-alive, close")], false),
            (1, &[H, ("Connection", b"upgrade,close")], false),
            (
                1,
                &[H, ("Connection", b"keep-alive"), ("Connection", b" CLOSE ")],
                false,
            ),
            (1, &[H, ("Connection", b"closed")], true),
            (1, &[H, ("Connection", b"keep-alive")], true),
            (1, &[H, ("Connection", b"")], true),
            (0, &[], false),
            (0, &[("Connection", b"keep-alive")], true),
            (0, &[("Connection", b"Keep-Alive")], true),
            (0, &[("Connection", b"foo, keep-alive")], true),
            (0, &[("Connection", b"keep-alive, close")], false),
            (0, &[("Connection", b"keep-alivex")], false),
            (0, &[("Connection", b"close")], false),
        ];
        for &(version, fields, want) in cases {
            assert_eq!(
                ka(version, fields),
                Ok(want),
                "version 1.{version}, fields {fields:?}"
            );
        }
    }

    #[test]
    fn no_cl_and_no_te_means_no_body() {
        check_all(
            1,
            &[
                (&[H], ok11(BodyKind::None)),
                (&[H, ("X-Content-Length", b"5")], ok11(BodyKind::None)),
                (&[H, ("Content-Type", b"text/plain")], ok11(BodyKind::None)),
            ],
        );
    }

    #[test]
    fn versions_above_one_are_treated_as_http11() {
        assert_eq!(run(1, &[H]), run(9, &[H]));
        assert_eq!(run(9, &[]), Err(ParseError::MissingHost));
    }

    /// Limits small enough to cross in a test.
    fn small_limits() -> Limits {
        Limits {
            max_request_line_bytes: 20,
            max_header_field_bytes: 16,
            max_head_bytes: 64,
            ..Limits::default()
        }
    }

    /// A request line of exactly `len` bytes (without CRLF).
    fn request_line(len: usize) -> Vec<u8> {
        let mut line = b"GET /".to_vec();
        line.resize(len - " HTTP/1.1".len(), b'a');
        line.extend_from_slice(b" HTTP/1.1");
        assert_eq!(line.len(), len);
        line
    }

    /// A field line of exactly `len` bytes (without CRLF).
    fn field_line(len: usize) -> Vec<u8> {
        let mut line = b"X: ".to_vec();
        line.resize(len, b'v');
        line
    }

    fn head(lines: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    #[test]
    fn head_bytes_rules() {
        let l = Limits::default();
        let cases: &[(&[u8], Result<(), ParseError>)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok(())),
            (b"GET / HTTP/1.1\r\n\r\n", Ok(())),
            // RFC 9112 §2.2: empty lines before the request line are tolerated.
            (b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok(())),
            // Bytes after the blank line (a body, the next request) are not examined.
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n\n\n\n",
                Ok(()),
            ),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n \r\n\n", Ok(())),
            // S13: bare LF anywhere in the head.
            (b"GET / HTTP/1.1\nHost: a\n\n", Err(ParseError::BareLf)),
            (b"GET / HTTP/1.1\r\nHost: a\n\r\n", Err(ParseError::BareLf)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\n", Err(ParseError::BareLf)),
            (
                b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
                Err(ParseError::BareLf),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX: \rb\n\r\n",
                Err(ParseError::BareLf),
            ),
            // S11: obs-fold, including whitespace before the first field line.
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
                Err(ParseError::ObsFold),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n",
                Err(ParseError::ObsFold),
            ),
            (
                b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
                Err(ParseError::ObsFold),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(
                &check_head_bytes(raw, &l),
                want,
                "head: {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn request_line_at_limit_is_accepted_and_one_more_is_414() {
        let l = small_limits();
        assert_eq!(check_head_bytes(&head(&[&request_line(20)]), &l), Ok(()));
        assert_eq!(
            check_head_bytes(&head(&[&request_line(21)]), &l),
            Err(ParseError::RequestLineTooLong)
        );
        // Leading empty lines count towards the request line.
        let mut padded = b"\r\n".to_vec();
        padded.extend_from_slice(&head(&[&request_line(18)]));
        assert_eq!(check_head_bytes(&padded, &l), Ok(()));
        let mut padded = b"\r\n".to_vec();
        padded.extend_from_slice(&head(&[&request_line(19)]));
        assert_eq!(
            check_head_bytes(&padded, &l),
            Err(ParseError::RequestLineTooLong)
        );
        assert_eq!(ParseError::RequestLineTooLong.status(), 414);
    }

    #[test]
    fn field_line_at_limit_is_accepted_and_one_more_is_431() {
        let l = small_limits();
        let rl = request_line(14);
        assert_eq!(check_head_bytes(&head(&[&rl, &field_line(16)]), &l), Ok(()));
        assert_eq!(
            check_head_bytes(&head(&[&rl, &field_line(17)]), &l),
            Err(ParseError::HeaderFieldTooLarge)
        );
        assert_eq!(
            check_head_bytes(&head(&[&rl, b"A: b", &field_line(17), b"C: d"]), &l),
            Err(ParseError::HeaderFieldTooLarge)
        );
        assert_eq!(ParseError::HeaderFieldTooLarge.status(), 431);
    }

    #[test]
    fn head_at_limit_is_accepted_and_one_more_is_431() {
        let rl = request_line(14);
        let full = head(&[&rl, &field_line(16), &field_line(16), b"A: b"]);
        let at = Limits {
            max_head_bytes: full.len(),
            ..small_limits()
        };
        assert_eq!(check_head_bytes(&full, &at), Ok(()));
        let under = Limits {
            max_head_bytes: full.len() - 1,
            ..small_limits()
        };
        assert_eq!(
            check_head_bytes(&full, &under),
            Err(ParseError::HeadTooLarge)
        );
        assert_eq!(ParseError::HeadTooLarge.status(), 431);
    }

    #[test]
    fn partial_head_limits() {
        let l = small_limits();
        let rl = request_line(14);
        let with = |parts: &[&[u8]]| parts.concat();
        let cases: Vec<(Vec<u8>, Result<(), ParseError>)> = vec![
            (Vec::new(), Ok(())),
            (b"GET / HT".to_vec(), Ok(())),
            (request_line(20), Ok(())),
            (with(&[&request_line(20), b"\r"]), Ok(())),
            (
                with(&[&request_line(20), b"x"]),
                Err(ParseError::RequestLineTooLong),
            ),
            (vec![b'a'; 500], Err(ParseError::RequestLineTooLong)),
            (with(&[b"\r\n", &request_line(18)]), Ok(())),
            (
                with(&[b"\r\n", &request_line(19)]),
                Err(ParseError::RequestLineTooLong),
            ),
            (b"\r\n".repeat(11), Err(ParseError::RequestLineTooLong)),
            (with(&[&rl, b"\r\n", &field_line(16)]), Ok(())),
            (with(&[&rl, b"\r\n", &field_line(16), b"\r"]), Ok(())),
            (
                with(&[&rl, b"\r\n", &field_line(17)]),
                Err(ParseError::HeaderFieldTooLarge),
            ),
            (
                with(&[&rl, b"\r\n", b"A: b\r\n", &field_line(17)]),
                Err(ParseError::HeaderFieldTooLarge),
            ),
            (
                with(&[&rl, b"\r\n", &vec![b'x'; 300]]),
                Err(ParseError::HeaderFieldTooLarge),
            ),
            (
                with(&[&rl, b"\r\n", &b"A: b\r\n".repeat(9)]),
                Err(ParseError::HeadTooLarge),
            ),
            (with(&[&rl, b"\r\n", &b"A: b\r\n".repeat(8)]), Ok(())),
        ];
        for (partial, want) in cases {
            assert_eq!(
                check_partial_head(&partial, &l),
                want,
                "partial: {:?}",
                String::from_utf8_lossy(&partial)
            );
        }
    }

    #[test]
    fn partial_check_accepts_every_prefix_of_an_acceptable_head() {
        let l = small_limits();
        let rl = request_line(20);
        let heads = [
            head(&[&rl, &field_line(16), &field_line(16)]),
            head(&[b"GET / HTTP/1.1", b"Host: a"]),
            [
                b"\r\n".as_slice(),
                &head(&[&request_line(18), &field_line(16)]),
            ]
            .concat(),
        ];
        for full in &heads {
            assert_eq!(check_head_bytes(full, &l), Ok(()));
            for end in 0..full.len() {
                assert_eq!(
                    check_partial_head(&full[..end], &l),
                    Ok(()),
                    "prefix {end} of {full:?}"
                );
            }
        }
    }

    #[test]
    fn partial_check_rejects_at_the_first_byte_over_a_limit() {
        let l = small_limits();
        // The request line goes over at byte 21 (no CRLF within 20 bytes).
        let long = request_line(24);
        for end in 0..=long.len() {
            let want = if end > 20 {
                Err(ParseError::RequestLineTooLong)
            } else {
                Ok(())
            };
            assert_eq!(check_partial_head(&long[..end], &l), want, "prefix {end}");
        }
        // A field line goes over at its 17th byte.
        let rl = request_line(14);
        let raw = [rl.as_slice(), b"\r\n", &field_line(20)].concat();
        let field_start = rl.len() + 2;
        for end in field_start..=raw.len() {
            let want = if end - field_start > 16 {
                Err(ParseError::HeaderFieldTooLarge)
            } else {
                Ok(())
            };
            assert_eq!(check_partial_head(&raw[..end], &l), want, "prefix {end}");
        }
    }

    /// The whole pipeline the connection runs on a complete head.
    fn frame(raw: &[u8]) -> Result<Framing, ParseError> {
        check_head_bytes(raw, &Limits::default())?;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(raw) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => panic!("test head is incomplete: {raw:?}"),
            Err(e) => return Err(ParseError::Malformed(e)),
        }
        analyze(req.version.unwrap_or(1), req.headers)
    }

    #[test]
    fn wire_heads_get_the_security_md_verdicts() {
        use ParseError::*;
        let cases: &[(&str, &[u8], Result<BodyKind, ParseError>)] = &[
            ("S1", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", Err(ContentLengthWithTransferEncoding)),
            ("S2", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", Err(ConflictingContentLength)),
            ("S2", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", Err(ConflictingContentLength)),
            ("S3", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", Ok(BodyKind::Length(3))),
            ("S3", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", Ok(BodyKind::Length(3))),
            ("S4", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", Err(InvalidContentLength)),
            ("S4", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3 4\r\n\r\n", Err(InvalidContentLength)),
            ("S4", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", Err(InvalidContentLength)),
            ("S5", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Err(ChunkedNotLast)),
            ("S6", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", Err(UnknownTransferCoding)),
            ("S7", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Err(ChunkedTwice)),
            ("S8", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , Chunked \r\n\r\n", Ok(BodyKind::Chunked)),
            ("S9", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", Err(TransferEncodingInHttp10)),
            ("S11", b"POST / HTTP/1.1\r\nHost: a\r\nX: a\r\n chunked\r\n\r\n", Err(ObsFold)),
            ("S13", b"GET / HTTP/1.1\nHost: a\n\n", Err(BareLf)),
            ("S17", b"GET / HTTP/1.1\r\n\r\n", Err(MissingHost)),
            ("S17", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Err(DuplicateHost)),
            ("S17", b"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", Err(InvalidHost)),
            ("S17", b"GET / HTTP/1.0\r\n\r\n", Ok(BodyKind::None)),
            ("S25", b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", Err(ExpectationFailed)),
            ("S28", b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n", Ok(BodyKind::None)),
        ];
        for (id, raw, want) in cases {
            assert_eq!(
                &frame(raw).map(|f| f.body),
                want,
                "{id}: {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn connection_close_request_does_not_keep_alive() {
        // S26: the caller closes after responding when keep_alive is false.
        let f = frame(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        assert_eq!(f.map(|f| f.keep_alive), Ok(false));
    }
}
