//! Request heads: httparse plus the framing rules it does not enforce.
//!
//! Sans-IO: a function over bytes, limits and a reusable [`Request`], so
//! tests, fuzzers and benches drive it without sockets.

use super::error::ParseError;
use super::framing;
use super::request::{Method, Request};
use super::Limits;
use std::mem::MaybeUninit;
use std::ops::Range;

/// httparse needs a header array; this bounds `max_headers`.
const HEADER_SLOTS: usize = 512;

fn offset(base: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
    start..start + part.len()
}

/// Parses a request head from the start of `buf` into `req` (cleared first).
/// `Ok(None)`: the head is incomplete (and within limits so far). On success
/// returns the head's length in bytes and its framing; the body, if any,
/// follows in `buf`.
pub fn parse_head(
    buf: &[u8],
    limits: &Limits,
    req: &mut Request,
) -> Result<Option<(usize, framing::Framing)>, ParseError> {
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
    framing::check_head_bytes(head, limits)?;
    if len > limits.max_head_bytes {
        return Err(ParseError::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(ParseError::Malformed(httparse::Error::Token));
    };
    let fr = framing::analyze(version, parsed.headers)?;

    req.clear();
    req.head.extend_from_slice(head);
    req.method = Method::from_token(method);
    req.method_range = offset(buf, method.as_bytes());
    req.http10 = version == 0;
    let t = offset(buf, target.as_bytes());
    let (path, query, authority) = split_target(target, t.start)?;
    if req.method == Method::Options && target == "*" {
        req.path = t;
    } else {
        req.path = path;
    }
    req.query = query;
    req.authority = authority;
    req.headers.extend(
        parsed
            .headers
            .iter()
            .map(|h| (offset(buf, h.name.as_bytes()), offset(buf, h.value))),
    );
    Ok(Some((len, fr)))
}

/// Splits a request target into path, query and (absolute-form) authority
/// ranges, relative to the head. RFC 9112 §3.2.
#[allow(clippy::type_complexity)]
fn split_target(
    target: &str,
    base: usize,
) -> Result<(Range<usize>, Option<Range<usize>>, Option<Range<usize>>), ParseError> {
    if !target.is_ascii() {
        return Err(ParseError::InvalidTarget);
    }
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
    let rest = target.get(start..).unwrap_or_default();
    let (p_len, query) = match memchr::memchr(b'?', rest.as_bytes()) {
        Some(q) => (q, Some(base + start + q + 1..base + target.len())),
        None => (rest.len(), None),
    };
    let path = if p_len == 0 {
        // `http://host` or `http://host?x` means path "/"; point at a '/' we know exists... none
        // does, so use an empty range and let `path()` report "" → routes treat it as "/".
        base + start..base + start
    } else {
        base + start..base + start + p_len
    };
    Ok((path, query, authority))
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
