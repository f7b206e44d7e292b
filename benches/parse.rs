//! In-process costs of the HTTP hot path: parsing heads, encoding responses,
//! decoding chunked bodies, encoding SSE events. Prints; asserts nothing.

use bytes::BytesMut;
use conduit::http::{parse::parse_head, response, sse, ChunkedDecoder, Limits, Request, Response};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const WRK_GET: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";
const BROWSER_GET: &[u8] = b"GET /v2/models/resnet/versions/1/ready?verbose=true HTTP/1.1\r\n\
Host: localhost:8080\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n\
Connection: keep-alive\r\n\r\n";

fn parse(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("parse_head");
    for (name, req) in [("wrk_get", WRK_GET), ("browser_get", BROWSER_GET)] {
        g.throughput(Throughput::Bytes(req.len() as u64));
        let mut r = Request::default();
        g.bench_function(name, |b| {
            b.iter(|| {
                let (head, _) = parse_head(black_box(req), &limits).unwrap().unwrap();
                head.fill(req, &mut r);
                head.len
            })
        });
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let date = *b"Sun, 06 Nov 1994 08:49:37 GMT";
    let f = response::Framing {
        head_only: false,
        keep_alive: true,
        http10: false,
    };
    let mut out = BytesMut::with_capacity(4096);
    let plain = Response::with_body(
        200,
        "text/plain",
        bytes::Bytes::from_static(b"Hello, World!"),
    );
    c.bench_function("encode_plaintext", |b| {
        b.iter(|| {
            out.clear();
            response::encode(black_box(&plain), f, &date, &mut out)
        })
    });
    let json = Response::json(200, br#"{"message":"Hello, World!"}"#.to_vec())
        .header("X-Request-Id", "abc123");
    c.bench_function("encode_json_extra_header", |b| {
        b.iter(|| {
            out.clear();
            response::encode(black_box(&json), f, &date, &mut out)
        })
    });
}

fn chunked(c: &mut Criterion) {
    let mut body = Vec::new();
    for _ in 0..64 {
        body.extend_from_slice(b"400\r\n");
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut g = c.benchmark_group("chunked");
    g.throughput(Throughput::Bytes(body.len() as u64));
    let mut out = Vec::with_capacity(70_000);
    g.bench_function("decode_64x1KiB", |b| {
        b.iter(|| {
            out.clear();
            let mut d = ChunkedDecoder::new(16384, 16384);
            d.decode(black_box(&body), &mut out, 1 << 20).unwrap()
        })
    });
    g.finish();
}

fn sse_encode(c: &mut Criterion) {
    let mut out = BytesMut::with_capacity(4096);
    let data = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":50,"total":100}}"#;
    c.bench_function("sse_encode_event", |b| {
        b.iter(|| {
            out.clear();
            sse::encode(
                &sse::Event {
                    event: Some("message"),
                    id: Some("42"),
                    data: black_box(data),
                    retry_ms: None,
                },
                &mut out,
            )
        })
    });
}

criterion_group!(benches, parse, encode, chunked, sse_encode);
criterion_main!(benches);
