//! The http layer's errors and the one place that maps them to status codes.

use thiserror::Error;

/// Why a request could not be framed or accepted.
///
/// Every variant is answered with the status from [`ParseError::status`] and,
/// when [`ParseError::must_close`] says so, the connection is closed after the
/// response (SECURITY.md §2: never resync inside a stream we could not frame).
/// `Display` text is for humans and logs and may change.
#[non_exhaustive]
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The request line is longer than `max_request_line_bytes` (L1).
    #[error("request line too long")]
    RequestLineTooLong,
    /// The head is longer than `max_head_bytes` (L2).
    #[error("request head too large")]
    HeadTooLarge,
    /// One header field is longer than `max_header_field_bytes` (L2).
    #[error("header field too large")]
    HeaderFieldTooLarge,
    /// More than `max_headers` header fields (L3).
    #[error("too many header fields")]
    TooManyHeaders,
    /// httparse rejected the head (S10, S11, S12, S14, S15, S16).
    #[error("malformed request head: {0}")]
    Malformed(httparse::Error),
    /// A line in the head ends with a bare LF (S13).
    #[error("bare LF line ending in request head")]
    BareLf,
    /// A header line starts with whitespace (obs-fold, S11).
    #[error("obsolete line folding is not accepted")]
    ObsFold,
    /// A well-formed but unsupported HTTP version, e.g. HTTP/2.0 (S16).
    #[error("HTTP version not supported")]
    UnsupportedVersion,
    /// HTTP/1.1 request without `Host` (S17).
    #[error("missing Host header")]
    MissingHost,
    /// More than one `Host` header (S17).
    #[error("more than one Host header")]
    DuplicateHost,
    /// A `Host` value that is not a valid authority (S17).
    #[error("invalid Host header")]
    InvalidHost,
    /// A request target that is neither origin-form, absolute-form nor `*`.
    #[error("invalid request target")]
    InvalidTarget,
    /// Both `Content-Length` and `Transfer-Encoding` (S1).
    #[error("both Content-Length and Transfer-Encoding")]
    ContentLengthWithTransferEncoding,
    /// A `Content-Length` that is not `1*DIGIT` or overflows (S4).
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Several `Content-Length` values that differ (S2).
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// `Transfer-Encoding` whose final coding is not `chunked` (S5).
    #[error("final transfer coding is not chunked")]
    ChunkedNotLast,
    /// `chunked` applied more than once (S7).
    #[error("chunked applied more than once")]
    ChunkedTwice,
    /// A transfer coding we do not implement (S6).
    #[error("unknown transfer coding")]
    UnknownTransferCoding,
    /// `Transfer-Encoding` in an HTTP/1.0 request (S9).
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingInHttp10,
    /// A chunk-size line that is not `1*HEXDIG [ext] CRLF`, or overflows (S19).
    #[error("invalid chunk size")]
    InvalidChunkSize,
    /// Chunk data not followed by exactly CRLF (S20).
    #[error("chunk data not followed by CRLF")]
    InvalidChunkData,
    /// Chunk extensions longer than allowed, or containing CR/LF (S21, L11).
    #[error("invalid or oversized chunk extension")]
    InvalidChunkExtension,
    /// Trailer section longer than allowed or malformed (S22, L11).
    #[error("invalid or oversized trailer section")]
    InvalidTrailers,
    /// Body longer than the route's limit (L4).
    #[error("request body too large")]
    BodyTooLarge,
    /// An `Expect` other than `100-continue` (S25).
    #[error("expectation not supported")]
    ExpectationFailed,
    /// The head did not complete in time (L5).
    #[error("timed out reading request head")]
    HeadTimeout,
    /// The body stalled or was too slow (L6).
    #[error("timed out reading request body")]
    BodyTimeout,
    /// A stream would pass `max_streams_percent` of the connection cap, or
    /// (`per_client`) `max_streams_per_client` for the client's address (L15).
    #[error("{}", if *per_client { "too many open streams from this address; retry later" } else { "too many open streams; retry later" })]
    TooManyStreams {
        /// The client's own share was the limit met.
        per_client: bool,
    },
}

/// `Retry-After` seconds sent with [`ParseError::TooManyStreams`]: streams
/// are long-lived, so a slot frees at the pace clients leave.
pub const STREAM_RETRY_AFTER_SECS: u32 = 5;

impl ParseError {
    /// The status code this error is answered with. No other code picks one.
    pub fn status(&self) -> u16 {
        use ParseError::*;
        match self {
            RequestLineTooLong => 414,
            HeadTooLarge | HeaderFieldTooLarge | TooManyHeaders => 431,
            Malformed(_)
            | BareLf
            | ObsFold
            | MissingHost
            | DuplicateHost
            | InvalidHost
            | InvalidTarget
            | ContentLengthWithTransferEncoding
            | InvalidContentLength
            | ConflictingContentLength
            | ChunkedNotLast
            | ChunkedTwice
            | TransferEncodingInHttp10
            | InvalidChunkSize
            | InvalidChunkData
            | InvalidChunkExtension
            | InvalidTrailers => 400,
            UnsupportedVersion => 505,
            UnknownTransferCoding => 501,
            BodyTooLarge => 413,
            ExpectationFailed => 417,
            HeadTimeout | BodyTimeout => 408,
            TooManyStreams { .. } => 503,
        }
    }

    /// Whether the connection must close after the error response.
    ///
    /// Every parse error closes: once framing is in doubt nothing after it
    /// can be trusted (SECURITY.md §2). 417 is the exception: the head was
    /// framed fine, but its body (if any) was never read, so we close too.
    /// A refused stream is not a framing error: the request was read whole.
    pub fn must_close(&self) -> bool {
        !matches!(self, ParseError::TooManyStreams { .. })
    }
}
