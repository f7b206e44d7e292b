//! Incremental decoder for `Transfer-Encoding: chunked` request bodies
//! (RFC 9112 §7.1), fed whatever bytes have arrived, one byte or a megabyte.
//!
//! Invariant: no byte after the end of the chunked message is consumed; the
//! next pipelined request is left in the caller's buffer.
//! Invariant: `NeedMore` means every input byte was consumed; nothing is buffered
//! inside the decoder except a few integers of state.
//! Invariant: chunk extensions and trailer fields are validated, counted against
//! their caps and dropped; they never reach the header map or change framing.
//! Invariant: after an error every later call returns that same error.

use super::error::ParseError;

/// Most hex digits accepted in one chunk-size. 16 digits cover every u64;
/// more can only be padding zeros, which would let a peer stream forever
/// without producing a byte of body.
const MAX_CHUNK_SIZE_DIGITS: u8 = 16;

/// What [`ChunkedDecoder::decode`] reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The message is not complete; all input was consumed. Call again with
    /// more bytes.
    NeedMore,
    /// The final CRLF was consumed. Bytes after it were not; they belong to
    /// the next request.
    Done,
}

/// Decodes one chunked body incrementally, with caps on chunk extensions and
/// trailers (L11) and on the body (L4).
///
/// The grammar is enforced strictly (SECURITY.md S19–S22): chunk-size is
/// 1 to 16 hex digits, BWS is allowed only where RFC 9112 §7.1.1 puts it
/// (around `;` and `=` in extensions), every line ends in CRLF, and trailer
/// lines are `token ":" value` with no CTL but HTAB in the value.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    max_chunk_ext_bytes: usize,
    max_trailer_bytes: usize,
    /// Chunk-extension bytes seen so far in this body.
    ext_bytes: usize,
    /// Trailer-section bytes seen so far.
    trailer_bytes: usize,
    /// Body bytes produced so far.
    decoded: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside a line: size line, extensions, CRLF after data, or trailers.
    Line(Line),
    /// Copying chunk data; this many bytes of the chunk are left.
    Data { remaining: u64 },
    /// The final CRLF was consumed.
    Done,
    /// An error was returned; it is returned again on every call.
    Failed(ParseError),
}

/// Byte-at-a-time states. `size` is the chunk-size being read or just read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Expecting the first hex digit of a chunk-size.
    SizeStart,
    /// Inside the chunk-size digits.
    Size { size: u64, digits: u8 },
    /// BWS after the chunk-size; only `;` may end it.
    SizeWs { size: u64 },
    /// After `;` (and BWS): expecting an extension name.
    ExtNameStart { size: u64 },
    /// Inside an extension name.
    ExtName { size: u64 },
    /// BWS after an extension name; `=` or `;` must follow.
    ExtNameWs { size: u64 },
    /// After `=` (and BWS): expecting a token or a quoted-string.
    ExtValueStart { size: u64 },
    /// Inside a token extension value.
    ExtValueToken { size: u64 },
    /// Inside a quoted-string extension value.
    ExtQuoted { size: u64 },
    /// After a backslash inside a quoted-string.
    ExtQuotedEscape { size: u64 },
    /// Right after the closing quote of a quoted-string.
    ExtAfterQuote { size: u64 },
    /// BWS after an extension value; only `;` may end it.
    ExtValueWs { size: u64 },
    /// After the size line's CR; `in_ext` says whether extensions were present.
    SizeLf { size: u64, in_ext: bool },
    /// After chunk data; expecting CR.
    DataCr,
    /// After chunk data and CR; expecting LF.
    DataLf,
    /// At the start of a trailer line or the final empty line.
    TrailerStart,
    /// Inside a trailer field name.
    TrailerName,
    /// Inside a trailer field value.
    TrailerValue,
    /// After a trailer line's CR; expecting LF.
    TrailerLf,
    /// After the final empty line's CR; expecting LF.
    EndLf,
}

impl Line {
    /// Whether a byte read in this state is part of the chunk extensions
    /// (the bytes between the chunk-size digits and CRLF).
    fn is_ext(self) -> bool {
        match self {
            Line::SizeWs { .. }
            | Line::ExtNameStart { .. }
            | Line::ExtName { .. }
            | Line::ExtNameWs { .. }
            | Line::ExtValueStart { .. }
            | Line::ExtValueToken { .. }
            | Line::ExtQuoted { .. }
            | Line::ExtQuotedEscape { .. }
            | Line::ExtAfterQuote { .. }
            | Line::ExtValueWs { .. } => true,
            Line::SizeStart
            | Line::Size { .. }
            | Line::SizeLf { .. }
            | Line::DataCr
            | Line::DataLf
            | Line::TrailerStart
            | Line::TrailerName
            | Line::TrailerValue
            | Line::TrailerLf
            | Line::EndLf => false,
        }
    }

    /// Whether a byte read in this state is part of a trailer line.
    fn is_trailer(self) -> bool {
        match self {
            Line::TrailerName | Line::TrailerValue | Line::TrailerLf => true,
            Line::SizeStart
            | Line::Size { .. }
            | Line::SizeWs { .. }
            | Line::ExtNameStart { .. }
            | Line::ExtName { .. }
            | Line::ExtNameWs { .. }
            | Line::ExtValueStart { .. }
            | Line::ExtValueToken { .. }
            | Line::ExtQuoted { .. }
            | Line::ExtQuotedEscape { .. }
            | Line::ExtAfterQuote { .. }
            | Line::ExtValueWs { .. }
            | Line::SizeLf { .. }
            | Line::DataCr
            | Line::DataLf
            | Line::TrailerStart
            | Line::EndLf => false,
        }
    }
}

impl ChunkedDecoder {
    /// A decoder for one body. `max_chunk_ext_bytes` caps the chunk-extension
    /// bytes of the whole body (everything between a chunk-size and its CRLF);
    /// `max_trailer_bytes` caps the trailer section (each trailer line with its
    /// CRLF; the final empty line does not count). Going over either is an
    /// error (L11; defaults 16 KiB in `Limits`).
    pub fn new(max_chunk_ext_bytes: usize, max_trailer_bytes: usize) -> Self {
        ChunkedDecoder {
            state: State::Line(Line::SizeStart),
            max_chunk_ext_bytes,
            max_trailer_bytes,
            ext_bytes: 0,
            trailer_bytes: 0,
            decoded: 0,
        }
    }

    /// Consumes bytes from `input` and appends decoded data to `body`.
    /// Returns how many bytes of `input` were consumed and whether the
    /// message is complete.
    ///
    /// With [`Progress::NeedMore`] all of `input` was consumed. With
    /// [`Progress::Done`] the consumed count stops right after the final CRLF;
    /// later calls consume nothing and return `Done` again.
    ///
    /// Fails with [`ParseError::BodyTooLarge`] as soon as a chunk-size line
    /// announces data that would take the body past `max_body` bytes, before
    /// any of that data is read. Other errors: [`ParseError::InvalidChunkSize`]
    /// (S19), [`ParseError::InvalidChunkData`] (S20),
    /// [`ParseError::InvalidChunkExtension`] (S21, L11) and
    /// [`ParseError::InvalidTrailers`] (S22, L11). On error `body` may hold
    /// data from earlier chunks; the caller must discard it and close.
    pub fn decode(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        max_body: u64,
    ) -> Result<(usize, Progress), ParseError> {
        let mut rest = input;
        loop {
            match self.state {
                State::Done => return Ok((input.len() - rest.len(), Progress::Done)),
                State::Failed(e) => return Err(e),
                State::Data { remaining } => {
                    if rest.is_empty() {
                        return Ok((input.len(), Progress::NeedMore));
                    }
                    let n = usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    let (data, tail) = rest.split_at(n);
                    let n64 = n as u64;
                    let decoded = self.decoded.saturating_add(n64);
                    if decoded > max_body {
                        // Only reachable if the caller lowered `max_body` mid-body.
                        return Err(self.fail(ParseError::BodyTooLarge));
                    }
                    body.extend_from_slice(data);
                    self.decoded = decoded;
                    rest = tail;
                    self.state = match remaining - n64 {
                        0 => State::Line(Line::DataCr),
                        left => State::Data { remaining: left },
                    };
                }
                State::Line(line) => {
                    let Some((&b, tail)) = rest.split_first() else {
                        return Ok((input.len(), Progress::NeedMore));
                    };
                    rest = tail;
                    match self.step(line, b, max_body) {
                        Ok(next) => self.state = next,
                        Err(e) => return Err(self.fail(e)),
                    }
                }
            }
        }
    }

    /// Records `e` so later calls return it too.
    fn fail(&mut self, e: ParseError) -> ParseError {
        self.state = State::Failed(e);
        e
    }

    /// One byte of a line. Returns the next state.
    fn step(&mut self, line: Line, b: u8, max_body: u64) -> Result<State, ParseError> {
        use ParseError::{
            InvalidChunkData, InvalidChunkExtension, InvalidChunkSize, InvalidTrailers,
        };
        let is_ws = b == b' ' || b == b'\t';

        // S21, L11: extension bytes are capped per body (RFC 9112 §7.1.1).
        let starts_ext = matches!(line, Line::Size { .. }) && (b == b';' || is_ws);
        if (line.is_ext() && b != b'\r') || starts_ext {
            self.ext_bytes += 1;
            if self.ext_bytes > self.max_chunk_ext_bytes {
                return Err(InvalidChunkExtension);
            }
        }
        // S22, L11: the trailer section is capped (RFC 9112 §7.1.2).
        if line.is_trailer() || (line == Line::TrailerStart && b != b'\r') {
            self.trailer_bytes += 1;
            if self.trailer_bytes > self.max_trailer_bytes {
                return Err(InvalidTrailers);
            }
        }

        let next = match line {
            // S19, RFC 9112 §7.1: chunk-size = 1*HEXDIG; no sign, prefix or leading space.
            Line::SizeStart => match hex_value(b) {
                Some(d) => Line::Size { size: d, digits: 1 },
                None => return Err(InvalidChunkSize),
            },
            Line::Size { size, digits } => match (hex_value(b), b) {
                (Some(d), _) => {
                    let digits = digits + 1;
                    if digits > MAX_CHUNK_SIZE_DIGITS {
                        return Err(InvalidChunkSize);
                    }
                    // S19: guard against overflow (RFC 9112 §7.1).
                    let size = size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(d))
                        .ok_or(InvalidChunkSize)?;
                    Line::Size { size, digits }
                }
                (None, b';') => Line::ExtNameStart { size },
                (None, b' ' | b'\t') => Line::SizeWs { size },
                (None, b'\r') => Line::SizeLf {
                    size,
                    in_ext: false,
                },
                (None, _) => return Err(InvalidChunkSize),
            },
            // BWS is allowed before `;` only: `3 \r\n` has no extension to excuse it.
            Line::SizeWs { size } => match b {
                b' ' | b'\t' => Line::SizeWs { size },
                b';' => Line::ExtNameStart { size },
                _ => return Err(InvalidChunkSize),
            },
            Line::ExtNameStart { size } => match b {
                b' ' | b'\t' => Line::ExtNameStart { size },
                _ if is_tchar(b) => Line::ExtName { size },
                _ => return Err(InvalidChunkExtension),
            },
            Line::ExtName { size } => match b {
                b'\r' => Line::SizeLf { size, in_ext: true },
                b';' => Line::ExtNameStart { size },
                b'=' => Line::ExtValueStart { size },
                b' ' | b'\t' => Line::ExtNameWs { size },
                _ if is_tchar(b) => Line::ExtName { size },
                _ => return Err(InvalidChunkExtension),
            },
            Line::ExtNameWs { size } => match b {
                b' ' | b'\t' => Line::ExtNameWs { size },
                b';' => Line::ExtNameStart { size },
                b'=' => Line::ExtValueStart { size },
                _ => return Err(InvalidChunkExtension),
            },
            Line::ExtValueStart { size } => match b {
                b' ' | b'\t' => Line::ExtValueStart { size },
                b'"' => Line::ExtQuoted { size },
                _ if is_tchar(b) => Line::ExtValueToken { size },
                _ => return Err(InvalidChunkExtension),
            },
            Line::ExtValueToken { size } => match b {
                b'\r' => Line::SizeLf { size, in_ext: true },
                b';' => Line::ExtNameStart { size },
                b' ' | b'\t' => Line::ExtValueWs { size },
                _ if is_tchar(b) => Line::ExtValueToken { size },
                _ => return Err(InvalidChunkExtension),
            },
            // S21: a CR or LF inside a quoted-string is never allowed (qdtext, RFC 9110 §5.6.4).
            Line::ExtQuoted { size } => match b {
                b'"' => Line::ExtAfterQuote { size },
                b'\\' => Line::ExtQuotedEscape { size },
                b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF => {
                    Line::ExtQuoted { size }
                }
                _ => return Err(InvalidChunkExtension),
            },
            Line::ExtQuotedEscape { size } => match b {
                b'\t' | b' '..=0x7E | 0x80..=0xFF => Line::ExtQuoted { size },
                _ => return Err(InvalidChunkExtension),
            },
            Line::ExtAfterQuote { size } => match b {
                b'\r' => Line::SizeLf { size, in_ext: true },
                b';' => Line::ExtNameStart { size },
                b' ' | b'\t' => Line::ExtValueWs { size },
                _ => return Err(InvalidChunkExtension),
            },
            Line::ExtValueWs { size } => match b {
                b' ' | b'\t' => Line::ExtValueWs { size },
                b';' => Line::ExtNameStart { size },
                _ => return Err(InvalidChunkExtension),
            },
            // S19: a bare LF or CR + other byte does not end a size line.
            Line::SizeLf { size, in_ext } => match b {
                b'\n' if size == 0 => Line::TrailerStart,
                b'\n' => {
                    // L4: refuse the chunk before reading any of its data.
                    if self.decoded.saturating_add(size) > max_body {
                        return Err(ParseError::BodyTooLarge);
                    }
                    return Ok(State::Data { remaining: size });
                }
                _ if in_ext => return Err(InvalidChunkExtension),
                _ => return Err(InvalidChunkSize),
            },
            // S20, RFC 9112 §7.1: chunk data is followed by exactly CRLF.
            Line::DataCr => match b {
                b'\r' => Line::DataLf,
                _ => return Err(InvalidChunkData),
            },
            Line::DataLf => match b {
                b'\n' => Line::SizeStart,
                _ => return Err(InvalidChunkData),
            },
            // S22: trailer lines follow the head's field-line rules (RFC 9112 §5).
            Line::TrailerStart => match b {
                b'\r' => Line::EndLf,
                _ if is_tchar(b) => Line::TrailerName,
                _ => return Err(InvalidTrailers),
            },
            Line::TrailerName => match b {
                b':' => Line::TrailerValue,
                _ if is_tchar(b) => Line::TrailerName,
                _ => return Err(InvalidTrailers),
            },
            Line::TrailerValue => match b {
                b'\r' => Line::TrailerLf,
                b'\t' | b' '..=0x7E | 0x80..=0xFF => Line::TrailerValue,
                _ => return Err(InvalidTrailers),
            },
            Line::TrailerLf => match b {
                b'\n' => Line::TrailerStart,
                _ => return Err(InvalidTrailers),
            },
            Line::EndLf => match b {
                b'\n' => return Ok(State::Done),
                _ => return Err(InvalidTrailers),
            },
        };
        Ok(State::Line(next))
    }
}

/// The value of one hex digit, either case.
fn hex_value(b: u8) -> Option<u64> {
    char::from(b).to_digit(16).map(u64::from)
}

/// RFC 9110 §5.6.2 tchar.
pub(super) const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParseError::*;

    const EXT_CAP: usize = 16 * 1024;
    const TRAILER_CAP: usize = 16 * 1024;
    const BODY_CAP: u64 = 4 * 1024 * 1024;

    /// What feeding a whole input produced.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Outcome {
        /// The message ended after `consumed` bytes with this body.
        Done {
            body: Vec<u8>,
            consumed: usize,
        },
        /// All input was consumed and more is needed.
        NeedMore {
            body: Vec<u8>,
        },
        Err(ParseError),
    }

    /// Feeds `input` split at the given points, checking the per-call contract.
    fn feed(input: &[u8], splits: &[usize], caps: (usize, usize, u64)) -> Outcome {
        let mut d = ChunkedDecoder::new(caps.0, caps.1);
        let mut body = Vec::new();
        let mut consumed = 0;
        let mut start = 0;
        for end in splits.iter().copied().chain([input.len()]) {
            let piece = &input[start..end];
            match d.decode(piece, &mut body, caps.2) {
                Ok((n, Progress::Done)) => {
                    assert!(n <= piece.len());
                    consumed += n;
                    // Done is sticky and consumes nothing more.
                    assert_eq!(
                        d.decode(b"more", &mut body, caps.2),
                        Ok((0, Progress::Done))
                    );
                    return Outcome::Done { body, consumed };
                }
                Ok((n, Progress::NeedMore)) => {
                    assert_eq!(n, piece.len(), "NeedMore must consume all input");
                    consumed += n;
                }
                Err(e) => {
                    // Errors are sticky.
                    assert_eq!(d.decode(b"0\r\n\r\n", &mut body, caps.2), Err(e));
                    return Outcome::Err(e);
                }
            }
            start = end;
        }
        Outcome::NeedMore { body }
    }

    /// Checks one case in one piece, byte by byte, and split at every point.
    #[track_caller]
    fn check_with(input: &[u8], caps: (usize, usize, u64), want: &Outcome) {
        let shown = String::from_utf8_lossy(input);
        assert_eq!(&feed(input, &[], caps), want, "whole: {shown:?}");
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(&feed(input, &every, caps), want, "byte by byte: {shown:?}");
        for at in 1..input.len() {
            assert_eq!(&feed(input, &[at], caps), want, "split at {at}: {shown:?}");
        }
    }

    #[track_caller]
    fn check(input: &[u8], want: &Outcome) {
        check_with(input, (EXT_CAP, TRAILER_CAP, BODY_CAP), want);
    }

    fn done(body: &[u8], consumed: usize) -> Outcome {
        Outcome::Done {
            body: body.to_vec(),
            consumed,
        }
    }

    #[track_caller]
    fn check_errors(inputs: &[&[u8]], want: ParseError) {
        for input in inputs {
            check(input, &Outcome::Err(want));
        }
    }

    #[test]
    fn valid_bodies_decode_the_same_in_any_split() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"0\r\n\r\n", b""),
            (b"3\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3\r\nabc\r\n5\r\nhello\r\n0\r\n\r\n", b"abchello"),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"003\r\nabc\r\n0000\r\n\r\n", b"abc"),
            (b"0000000000000003\r\nabc\r\n0\r\n\r\n", b"abc"),
            // Chunk data is opaque: CRLFs and NULs inside it are data.
            (b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n"),
            (b"5\r\n0\r\n\r\n\r\n0\r\n\r\n", b"0\r\n\r\n"),
            (b"2\r\n\0\xff\r\n0\r\n\r\n", b"\0\xff"),
        ];
        for (input, body) in cases {
            check(input, &done(body, input.len()));
        }
    }

    #[test]
    fn chunk_extensions_are_ignored() {
        let cases: &[&[u8]] = &[
            b"3;foo\r\nabc\r\n0\r\n\r\n",
            b"3;foo=bar\r\nabc\r\n0\r\n\r\n",
            b"3;foo=bar;baz\r\nabc\r\n0\r\n\r\n",
            b"3;a=\"b a;r\"\r\nabc\r\n0\r\n\r\n",
            b"3;a=\"q\\\"uote\\\\\"\r\nabc\r\n0\r\n\r\n",
            b"3;a=\"\"\r\nabc\r\n0\r\n\r\n",
            b"3;a=\"\xc3\xa9\"\r\nabc\r\n0\r\n\r\n",
            // BWS around `;` and `=` (RFC 9112 §7.1.1).
            b"3 ;foo\r\nabc\r\n0\r\n\r\n",
            b"3\t; foo = bar ; baz\r\nabc\r\n0\r\n\r\n",
            b"3;a=\"x\" ;b\r\nabc\r\n0\r\n\r\n",
            b"3;a=b\t;c=\"d\"\r\nabc\r\n0\r\n\r\n",
            b"3;!#$%&'*+-.^_`|~=x\r\nabc\r\n0\r\n\r\n",
            b"3\r\nabc\r\n0;last=1\r\n\r\n",
        ];
        for input in cases {
            check(input, &done(b"abc", input.len()));
        }
    }

    #[test]
    fn trailers_are_validated_and_dropped() {
        let cases: &[&[u8]] = &[
            b"3\r\nabc\r\n0\r\nX-T: v\r\n\r\n",
            b"3\r\nabc\r\n0\r\nA: 1\r\nB:\r\n\r\n",
            b"3\r\nabc\r\n0\r\nA:\tx y \r\n\r\n",
            b"3\r\nabc\r\n0\r\nContent-Length: 99\r\n\r\n",
            b"3\r\nabc\r\n0\r\nX: \x80\xff\r\n\r\n",
        ];
        for input in cases {
            check(input, &done(b"abc", input.len()));
        }
    }

    #[test]
    fn chunk_size_not_hexdig_is_invalid_chunk_size() {
        check_errors(
            &[
                b"0x3\r\nabc\r\n0\r\n\r\n",
                b" 3\r\nabc\r\n0\r\n\r\n",
                b"+3\r\nabc\r\n0\r\n\r\n",
                b"-1\r\na\r\n0\r\n\r\n",
                b"\r\n",
                b"\r\nabc\r\n0\r\n\r\n",
                b";ext\r\n",
                b"g\r\n",
                b"3g\r\n",
                b"fffffffffffffffff1\r\n",
                b"10000000000000000\r\n",
                // 17 digits: padding zeros are capped too.
                b"00000000000000003\r\nabc\r\n0\r\n\r\n",
                // Bare LF, or CR followed by anything but LF.
                b"3\nabc\r\n0\r\n\r\n",
                b"3\r\rabc\r\n0\r\n\r\n",
                b"3\rabc",
                b"0\n\r\n",
                // Whitespace is BWS before `;` only.
                b"3 \r\nabc\r\n0\r\n\r\n",
                b"3\t\r\n",
                b"3 4\r\n",
                b"3 \n",
            ],
            InvalidChunkSize,
        );
    }

    #[test]
    fn chunk_data_not_followed_by_crlf_is_invalid_chunk_data() {
        check_errors(
            &[
                b"3\r\nabcX0\r\n\r\n",
                b"3\r\nabc\rX",
                b"3\r\nabc\r\r\n",
                b"3\r\nabc\n0\r\n\r\n",
                b"3\r\nabcd\r\n0\r\n\r\n",
                b"1\r\na\r\n3\r\nabc0\r\n\r\n",
            ],
            InvalidChunkData,
        );
    }

    #[test]
    fn bad_chunk_extensions_are_invalid_chunk_extension() {
        check_errors(
            &[
                b"3;a\nabc\r\n0\r\n\r\n",
                b"3;a\rb\r\n",
                b"3;a=\"x\ry\"\r\nabc\r\n0\r\n\r\n",
                b"3;a=\"x\ny\"\r\nabc\r\n0\r\n\r\n",
                b"3;a=\"x\\\ny\"\r\n",
                b"3;a=\"x\r\n",
                b"3;\r\nabc\r\n0\r\n\r\n",
                b"3;;a\r\n",
                b"3;=v\r\n",
                b"3;a=\r\n",
                b"3;a=;b\r\n",
                b"3;a \r\n",
                b"3;a=b \r\n",
                b"3;a = \r\n",
                b"3;a=b c\r\n",
                b"3;a b\r\n",
                b"3;a=\"x\"y\r\n",
                b"3;a=\"x\" \r\n",
                b"3;a\0\r\n",
                b"3;a=\"\0\"\r\n",
                b"3;a=\"\x7f\"\r\n",
                b"3;a=b=c\r\n",
                b"3;a:b\r\n",
                b"3 ;\r\n",
            ],
            InvalidChunkExtension,
        );
    }

    #[test]
    fn bad_trailers_are_invalid_trailers() {
        check_errors(
            &[
                b"0\r\nX T: v\r\n\r\n",
                b"0\r\nX : v\r\n\r\n",
                b"0\r\n: v\r\n\r\n",
                b"0\r\nX\r\n\r\n",
                b"0\r\nX: a\0b\r\n\r\n",
                b"0\r\nX: a\nb\r\n\r\n",
                b"0\r\nX: a\rb\r\n\r\n",
                b"0\r\nX: a\x7fb\r\n\r\n",
                b"0\r\nX: a\x01\r\n\r\n",
                b"0\r\nX: v\r\n obs\r\n\r\n",
                b"0\r\n X: v\r\n\r\n",
                b"0\r\nX: v\n\r\n",
                b"0\r\n\rX",
                b"0\r\n\n",
                b"0\r\nX: v\r\n\n",
                b"0\r\n\xc3\xa9: v\r\n\r\n",
            ],
            InvalidTrailers,
        );
    }

    #[test]
    fn incomplete_message_needs_more_and_keeps_partial_body() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"3", b""),
            (b"3;a=\"x", b""),
            (b"3\r\nab", b"ab"),
            (b"3\r\nabc\r\n", b"abc"),
            (b"3\r\nabc\r\n0\r\n", b"abc"),
            (b"3\r\nabc\r\n0\r\nX: y\r\n", b"abc"),
            (b"3\r\nabc\r\n0\r\n\r", b"abc"),
        ];
        for (input, body) in cases {
            check(
                input,
                &Outcome::NeedMore {
                    body: body.to_vec(),
                },
            );
        }
    }

    #[test]
    fn decoder_never_consumes_the_next_pipelined_request() {
        let msg: &[u8] = b"3\r\nabc\r\n0\r\nX: y\r\n\r\n";
        let next: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let input = [msg, next].concat();
        check(&input, &done(b"abc", msg.len()));
        // A chunk-size overflow cannot be used to hide the next request (hyper
        // `post_with_chunked_overflow`).
        let hidden = b"fffffffffffffffff1\r\nGET /sneaky HTTP/1.1\r\n\r\n";
        check(hidden, &Outcome::Err(InvalidChunkSize));
    }

    #[test]
    fn body_over_cap_is_rejected_before_its_data_is_read() {
        let caps = |max_body| (EXT_CAP, TRAILER_CAP, max_body);
        let input: &[u8] = b"3\r\nabc\r\n0\r\n\r\n";
        check_with(input, caps(3), &done(b"abc", input.len()));
        check_with(input, caps(2), &Outcome::Err(BodyTooLarge));
        // The second chunk would cross the cap: refused at its size line.
        let two: &[u8] = b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n";
        check_with(two, caps(4), &done(b"abcd", two.len()));
        check_with(two, caps(3), &Outcome::Err(BodyTooLarge));
        let mut d = ChunkedDecoder::new(EXT_CAP, TRAILER_CAP);
        let mut body = Vec::new();
        assert_eq!(
            d.decode(b"2\r\nab\r\n2\r\n", &mut body, 3),
            Err(BodyTooLarge)
        );
        assert_eq!(body, b"ab");
        // A huge announced chunk fails with no data at all.
        let mut d = ChunkedDecoder::new(EXT_CAP, TRAILER_CAP);
        assert_eq!(
            d.decode(b"ffffffff\r\n", &mut body, BODY_CAP),
            Err(BodyTooLarge)
        );
        assert_eq!(BodyTooLarge.status(), 413);
    }

    #[test]
    fn extension_bytes_are_capped_per_body() {
        let caps = |ext| (ext, TRAILER_CAP, BODY_CAP);
        // `;abc` is four extension bytes; BWS before `;` counts too.
        let one: &[u8] = b"3;abc\r\nabc\r\n0\r\n\r\n";
        check_with(one, caps(4), &done(b"abc", one.len()));
        check_with(one, caps(3), &Outcome::Err(InvalidChunkExtension));
        let ws: &[u8] = b"3 ;ab\r\nabc\r\n0\r\n\r\n";
        check_with(ws, caps(4), &done(b"abc", ws.len()));
        check_with(ws, caps(3), &Outcome::Err(InvalidChunkExtension));
        // The cap is for the whole body, not per chunk.
        let many: &[u8] = b"1;ab\r\na\r\n1;ab\r\nb\r\n0;ab\r\n\r\n";
        check_with(many, caps(9), &done(b"ab", many.len()));
        check_with(many, caps(8), &Outcome::Err(InvalidChunkExtension));
        // Default limit: 16 KiB of extensions is fine, one more byte is not.
        let big = |n: usize| [b"1;".as_slice(), &vec![b'x'; n - 1], b"\r\na\r\n0\r\n\r\n"].concat();
        assert!(matches!(
            feed(&big(EXT_CAP), &[], caps(EXT_CAP)),
            Outcome::Done { .. }
        ));
        assert_eq!(
            feed(&big(EXT_CAP + 1), &[], caps(EXT_CAP)),
            Outcome::Err(InvalidChunkExtension)
        );
        assert_eq!(InvalidChunkExtension.status(), 400);
    }

    #[test]
    fn trailer_bytes_are_capped() {
        let caps = |trailer| (EXT_CAP, trailer, BODY_CAP);
        // `X: y\r\n` is six trailer bytes; the final empty line is free.
        let input: &[u8] = b"0\r\nX: y\r\n\r\n";
        check_with(input, caps(6), &done(b"", input.len()));
        check_with(input, caps(5), &Outcome::Err(InvalidTrailers));
        let none: &[u8] = b"0\r\n\r\n";
        check_with(none, caps(0), &done(b"", none.len()));
        let two: &[u8] = b"0\r\nA: 1\r\nB: 2\r\n\r\n";
        check_with(two, caps(12), &done(b"", two.len()));
        check_with(two, caps(11), &Outcome::Err(InvalidTrailers));
        let big = [
            b"0\r\nX: ".as_slice(),
            &vec![b'v'; TRAILER_CAP],
            b"\r\n\r\n",
        ]
        .concat();
        assert_eq!(
            feed(&big, &[], caps(TRAILER_CAP)),
            Outcome::Err(InvalidTrailers)
        );
    }

    /// xorshift64*: deterministic pseudo-random numbers for round-trip tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn encoded_bodies_round_trip_through_any_split() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..300 {
            let body: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
            let mut wire = Vec::new();
            let mut rest = body.as_slice();
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len());
                let (chunk, tail) = rest.split_at(n);
                let size = if rng.below(2) == 0 {
                    format!("{n:x}")
                } else {
                    format!("{n:X}")
                };
                wire.extend_from_slice(size.as_bytes());
                match rng.below(4) {
                    0 => wire.extend_from_slice(b";k=v"),
                    1 => wire.extend_from_slice(b" ; k = \"a\\\"b\""),
                    _ => {}
                }
                wire.extend_from_slice(b"\r\n");
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
                rest = tail;
            }
            wire.extend_from_slice(b"0\r\n");
            if rng.below(2) == 0 {
                wire.extend_from_slice(b"X-Sum: 1\r\n");
            }
            wire.extend_from_slice(b"\r\n");
            let msg_len = wire.len();
            wire.extend_from_slice(b"GET /");
            let splits: Vec<usize> = {
                let mut s: Vec<usize> = (0..rng.below(6)).map(|_| rng.below(wire.len())).collect();
                s.sort_unstable();
                s
            };
            let caps = (EXT_CAP, TRAILER_CAP, BODY_CAP);
            assert_eq!(feed(&wire, &splits, caps), done(&body, msg_len));
            let every: Vec<usize> = (1..wire.len()).collect();
            assert_eq!(feed(&wire, &every, caps), done(&body, msg_len));
        }
    }
}
