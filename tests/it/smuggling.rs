//! HTTP/1.1 parsing rules against request smuggling (SECURITY.md §2, S1–S28)
//! and our own responses (R1, R2, R4), over real sockets with raw bytes.
//!
//! Rule of the house: if the framing of a message is in doubt, answer the
//! 4xx/5xx and close; never look for "the next request" in such a stream.

use crate::support::*;

fn server() -> TestServer {
    spawn_test_server(test_config())
}

/// A POST /echo whose head carries `fields` (each ending in CRLF) and then `body`.
fn post_with(fields: &str, body: &str) -> Vec<u8> {
    format!("POST /echo HTTP/1.1\r\nHost: localhost\r\n{fields}\r\n{body}").into_bytes()
}

/// Every case in `cases` on its own connection must get `status` + close.
#[track_caller]
fn rejects_all(cases: &[Vec<u8>], status: u16) {
    let srv = server();
    for raw in cases {
        assert_rejected(srv.addr, raw, status);
    }
}

const ABC_CHUNKED: &str = "3\r\nabc\r\n0\r\n\r\n";

// ---------------------------------------------------------------- S1

#[test]
fn te_and_cl_together_is_400_and_closes() {
    rejects_all(
        &[
            post_with(
                "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                ABC_CHUNKED,
            ),
            post_with(
                "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                ABC_CHUNKED,
            ),
            post_with(
                "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
                ABC_CHUNKED,
            ),
        ],
        400,
    );
}

// ---------------------------------------------------------------- S2

#[test]
fn differing_content_lengths_are_400_and_close() {
    rejects_all(
        &[
            post_with("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd"),
            post_with("Content-Length: 3, 4\r\n", "abcd"),
            post_with("Content-Length: 3\r\nContent-Length: 3, 4\r\n", "abcd"),
        ],
        400,
    );
}

// ---------------------------------------------------------------- S3

#[test]
fn identical_content_lengths_are_accepted_as_one() {
    let srv = server();
    for fields in [
        "Content-Length: 3\r\nContent-Length: 3\r\n",
        "Content-Length: 3, 3\r\n",
        "Content-Length: 3,3\r\n",
    ] {
        let resp = assert_accepted(srv.addr, &post_with(fields, "abc"));
        assert_eq!(resp.status_line(), status_line(200), "{fields:?}");
        assert_eq!(resp.body_str(), "abc", "{fields:?}");
    }
}

// ---------------------------------------------------------------- S4

#[test]
fn content_length_that_is_not_digits_is_400_and_closes() {
    let cases: Vec<Vec<u8>> = [
        "+3",
        "-1",
        "0x3",
        "3 4",
        "",
        "1_0",
        "3.0",
        "3,",
        "18446744073709551616",
        "99999999999999999999999",
    ]
    .iter()
    .map(|v| post_with(&format!("Content-Length: {v}\r\n"), "abc"))
    .collect();
    rejects_all(&cases, 400);
}

// ---------------------------------------------------------------- S5

#[test]
fn te_whose_final_coding_is_not_chunked_is_400_and_closes() {
    rejects_all(
        &[
            post_with("Transfer-Encoding: gzip\r\n", "abc"),
            post_with("Transfer-Encoding: chunked, gzip\r\n", ABC_CHUNKED),
            post_with(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
                ABC_CHUNKED,
            ),
        ],
        400,
    );
}

// ---------------------------------------------------------------- S6

#[test]
fn unknown_transfer_coding_is_501_and_closes() {
    rejects_all(
        &[
            post_with("Transfer-Encoding: xchunked\r\n", ABC_CHUNKED),
            post_with("Transfer-Encoding: identity\r\n", "abc"),
            post_with("Transfer-Encoding: chunkedx\r\n", ABC_CHUNKED),
            post_with("Transfer-Encoding: \"chunked\"\r\n", ABC_CHUNKED),
            // We implement no coding but chunked.
            post_with("Transfer-Encoding: gzip, chunked\r\n", ABC_CHUNKED),
        ],
        501,
    );
}

// ---------------------------------------------------------------- S7

#[test]
fn chunked_applied_twice_is_400_and_closes() {
    rejects_all(
        &[
            post_with("Transfer-Encoding: chunked, chunked\r\n", ABC_CHUNKED),
            post_with(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                ABC_CHUNKED,
            ),
        ],
        400,
    );
}

// ---------------------------------------------------------------- S8

#[test]
fn valid_te_list_quirks_are_treated_as_chunked() {
    let srv = server();
    for te in [
        "Chunked",
        "CHUNKED",
        " chunked ",
        ", chunked",
        "chunked,",
        ",, chunked ,",
        "\tchunked",
    ] {
        let raw = post_with(&format!("Transfer-Encoding: {te}\r\n"), ABC_CHUNKED);
        let resp = assert_accepted(srv.addr, &raw);
        assert_eq!(resp.status_line(), status_line(200), "{te:?}");
        assert_eq!(resp.body_str(), "abc", "{te:?}");
    }
}

// ---------------------------------------------------------------- S9

#[test]
fn te_in_http10_is_400_and_closes() {
    rejects_all(
        &[
            b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec(),
            b"POST /echo HTTP/1.0\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc".to_vec(),
            b"POST /echo HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n0\r\n\r\n"
                .to_vec(),
        ],
        400,
    );
}

// ---------------------------------------------------------------- S10

#[test]
fn whitespace_between_field_name_and_colon_is_400() {
    rejects_all(
        &[
            post_with("Content-Length : 3\r\n", "abc"),
            post_with("Transfer-Encoding\t: chunked\r\n", ABC_CHUNKED),
            b"GET / HTTP/1.1\r\nHost : localhost\r\n\r\n".to_vec(),
        ],
        400,
    );
}

// ---------------------------------------------------------------- S11

#[test]
fn obs_fold_is_400_with_a_body_saying_folding_is_not_accepted() {
    let srv = server();
    for raw in [
        &b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\n c\r\n\r\n"[..],
        &b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\n\tc\r\n\r\n"[..],
        &b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n , chunked\r\n\r\n0\r\n\r\n"[..],
    ] {
        let resp = assert_rejected(srv.addr, raw, 400);
        assert!(
            resp.body_str().to_ascii_lowercase().contains("fold"),
            "body should explain that folding is not accepted: {:?}",
            resp.body_str()
        );
    }
}

// ---------------------------------------------------------------- S12

#[test]
fn whitespace_before_the_first_header_line_is_400() {
    rejects_all(
        &[
            b"GET / HTTP/1.1\r\n Host: localhost\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\n\tX-A: b\r\nHost: localhost\r\n\r\n".to_vec(),
            b"POST /echo HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc"
                .to_vec(),
        ],
        400,
    );
}

// ---------------------------------------------------------------- S13

#[test]
fn bare_lf_line_endings_in_the_head_are_400() {
    rejects_all(
        &[
            b"GET / HTTP/1.1\nHost: localhost\n\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: localhost\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\n".to_vec(),
            b"GET / HTTP/1.1\nHost: localhost\r\n\r\n".to_vec(),
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nX-A: b\nContent-Length: 3\r\n\r\nabc"
                .to_vec(),
        ],
        400,
    );
}

// ---------------------------------------------------------------- S14

#[test]
fn cr_nul_or_lf_inside_a_header_value_is_400() {
    rejects_all(
        &[
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\rb\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\0b\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\nb\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\x7fb\r\n\r\n".to_vec(),
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nX-A: a\rContent-Length: 3\r\n\r\nabc"
                .to_vec(),
        ],
        400,
    );
}

// ---------------------------------------------------------------- S15

#[test]
fn non_token_or_empty_header_name_is_400() {
    rejects_all(
        &[
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX Y: z\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: localhost\r\n: v\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\x85X: z\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX\x00Y: z\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: localhost\r\n[X]: z\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: localhost\r\nNoColon\r\n\r\n".to_vec(),
        ],
        400,
    );
}

// ---------------------------------------------------------------- S16

#[test]
fn malformed_request_line_is_400() {
    rejects_all(
        &[
            b"GET  / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET /  HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET /a b HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET /a\tb HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET\t/ HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET / HTTP/1.10\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET / HTTP/1.\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET / http/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET / HTTP/11\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET /\nHTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1 \r\nHost: localhost\r\n\r\n".to_vec(),
            b"G(T / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET nonsense HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ],
        400,
    );
}

#[test]
fn http_1_10_is_400_not_http_1_1() {
    let srv = server();
    assert_rejected(
        srv.addr,
        b"GET /seq?n=1 HTTP/1.10\r\nHost: localhost\r\n\r\n",
        400,
    );
}

#[test]
fn unsupported_major_version_is_505() {
    let srv = server();
    for v in ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9"] {
        let raw = format!("GET / {v}\r\nHost: localhost\r\n\r\n");
        assert_rejected(srv.addr, raw.as_bytes(), 505);
    }
}

// ---------------------------------------------------------------- S17

#[test]
fn missing_duplicate_or_invalid_host_is_400() {
    rejects_all(
        &[
            b"GET /seq?n=1 HTTP/1.1\r\n\r\n".to_vec(),
            b"GET /seq?n=1 HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n".to_vec(),
            b"GET /seq?n=1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
            b"GET /seq?n=1 HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(),
            b"GET /seq?n=1 HTTP/1.1\r\nHost: a/b\r\n\r\n".to_vec(),
            b"GET /seq?n=1 HTTP/1.1\r\nHost: user@a\r\n\r\n".to_vec(),
            b"GET /seq?n=1 HTTP/1.1\r\nHost: a:99999\r\n\r\n".to_vec(),
            b"GET /seq?n=1 HTTP/1.1\r\nHost: a:\r\n\r\n".to_vec(),
            b"GET /seq?n=1 HTTP/1.1\r\nHost: :80\r\n\r\n".to_vec(),
            b"GET /seq?n=1 HTTP/1.1\r\nHost: [::1\r\n\r\n".to_vec(),
        ],
        400,
    );
}

#[test]
fn valid_host_forms_are_accepted() {
    let srv = server();
    for host in [
        "localhost",
        "localhost:8080",
        "127.0.0.1",
        "[::1]",
        "[::1]:80",
        "a.example.com",
    ] {
        let raw = format!("GET /host HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(assert_accepted(srv.addr, raw.as_bytes()).body_str(), host);
    }
    // HTTP/1.0 may omit Host.
    let (resp, _) = exchange(srv.addr, b"GET /host HTTP/1.0\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "(none)");
}

// ---------------------------------------------------------------- S18

#[test]
fn absolute_form_target_is_accepted_and_its_authority_wins() {
    let srv = server();
    let resp = assert_accepted(
        srv.addr,
        b"GET http://evil.example/host HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(resp.status_line(), status_line(200));
    assert_eq!(resp.body_str(), "evil.example");
    let resp = assert_accepted(
        srv.addr,
        b"GET HTTP://other.example:8080/host?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(resp.body_str(), "other.example:8080");
    let resp = assert_accepted(
        srv.addr,
        b"GET http://localhost/seq?n=5 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(resp.body_str(), "5");
}

#[test]
fn absolute_form_with_an_invalid_authority_is_400() {
    rejects_all(
        &[
            b"GET http://user@evil/host HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET http:///host HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            b"GET ftp://evil/host HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ],
        400,
    );
}

// ---------------------------------------------------------------- S19

#[test]
fn chunk_size_that_is_not_hex_digits_is_400_and_closes() {
    let cases: Vec<Vec<u8>> = [
        "0x3\r\nabc\r\n0\r\n\r\n",
        " 3\r\nabc\r\n0\r\n\r\n",
        "+3\r\nabc\r\n0\r\n\r\n",
        "-3\r\nabc\r\n0\r\n\r\n",
        "\r\nabc\r\n0\r\n\r\n",
        "3 \r\nabc\r\n0\r\n\r\n",
        "3\nabc\r\n0\r\n\r\n",
        "3\rabc\r\n0\r\n\r\n",
        "g\r\nabc\r\n0\r\n\r\n",
        "fffffffffffffffff1\r\nabc\r\n0\r\n\r\n",
        "00000000000000000003\r\nabc\r\n0\r\n\r\n",
        "3\r\nabc\r\n0\n\r\n",
    ]
    .iter()
    .map(|c| post_chunked("/echo", c))
    .collect();
    rejects_all(&cases, 400);
}

#[test]
fn chunk_size_overflow_does_not_hide_a_second_request() {
    // hyper's `post_with_chunked_overflow`: the wrapped size would make the
    // following bytes look like a new request.
    let srv = server();
    let raw = post_chunked(
        "/echo",
        "f0000000000000003\r\nabc\r\n0\r\n\r\nGET /seq?n=666 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    let mut r = Reader::new(connect(srv.addr));
    r.send(&raw);
    let resp = r.expect_error_close(400, "overflowing chunk size");
    assert!(!resp.body_str().contains("666"));
}

// ---------------------------------------------------------------- S20

#[test]
fn chunk_data_not_followed_by_crlf_is_400_and_closes() {
    let cases: Vec<Vec<u8>> = [
        "3\r\nabcX0\r\n\r\n",
        "3\r\nabc\rX0\r\n\r\n",
        "3\r\nabc\n0\r\n\r\n",
        "3\r\nabcd\r\n0\r\n\r\n",
        "3\r\nab\r\n0\r\n\r\n\r\n",
    ]
    .iter()
    .map(|c| post_chunked("/echo", c))
    .collect();
    rejects_all(&cases, 400);
}

// ---------------------------------------------------------------- S21

#[test]
fn valid_chunk_extensions_are_ignored() {
    let srv = server();
    for body in [
        "3;foo=bar\r\nabc\r\n0\r\n\r\n",
        "3;foo\r\nabc\r\n0;last\r\n\r\n",
        "3;a=\"x y;z\"\r\nabc\r\n0\r\n\r\n",
        "3 ; a = b ; c\r\nabc\r\n0\r\n\r\n",
        "3;a=\"q\\\"uoted\"\r\nabc\r\n0\r\n\r\n",
    ] {
        let resp = assert_accepted(srv.addr, &post_chunked("/echo", body));
        assert_eq!(resp.body_str(), "abc", "{body:?}");
    }
}

#[test]
fn chunk_extension_with_cr_or_lf_is_400() {
    let cases: Vec<Vec<u8>> = [
        "3;a\rb\r\nabc\r\n0\r\n\r\n",
        "3;a\nb\r\nabc\r\n0\r\n\r\n",
        "3;a=\"x\ry\"\r\nabc\r\n0\r\n\r\n",
        "3;a=\"x\ny\"\r\nabc\r\n0\r\n\r\n",
        "3;\r\nabc\r\n0\r\n\r\n",
        "3;a=\r\nabc\r\n0\r\n\r\n",
        "3;a=\"unterminated\r\nabc\r\n0\r\n\r\n",
    ]
    .iter()
    .map(|c| post_chunked("/echo", c))
    .collect();
    rejects_all(&cases, 400);
}

// ---------------------------------------------------------------- S22

#[test]
fn trailers_never_become_headers() {
    let srv = server();
    let body = "3\r\nabc\r\n0\r\nX-Smuggled: yes\r\nHost: evil\r\n\r\n";
    let resp = assert_accepted(srv.addr, &post_chunked("/header?name=x-smuggled", body));
    assert_eq!(resp.status_line(), status_line(200));
    assert_eq!(resp.body_str(), "(absent)");
    let resp = assert_accepted(srv.addr, &post_chunked("/header?name=host", body));
    assert_eq!(resp.body_str(), "localhost");
}

#[test]
fn trailers_cannot_change_framing() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    let mut raw = post_chunked(
        "/echo",
        "3\r\nabc\r\n0\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    raw.extend(get("/seq?n=2"));
    r.send(&raw);
    let resp = r.response();
    assert_eq!(resp.body_str(), "abc");
    let resp = r.response();
    assert_eq!(resp.status_line(), status_line(200));
    assert_eq!(resp.body_str(), "2");
}

#[test]
fn malformed_trailers_are_400() {
    let cases: Vec<Vec<u8>> = [
        "0\r\nX-A b\r\n\r\n",
        "0\r\nX-A: b\r\n c\r\n\r\n",
        "0\r\n X-A: b\r\n\r\n",
        "0\r\nX A: b\r\n\r\n",
        "0\r\nX-A: b\nX-B: c\r\n\r\n",
        "0\r\nX-A: b\0\r\n\r\n",
        "0\r\n\n",
    ]
    .iter()
    .map(|c| post_chunked("/echo", c))
    .collect();
    rejects_all(&cases, 400);
}

// ---------------------------------------------------------------- S23

#[test]
fn short_body_then_eof_is_closed_without_a_response() {
    let srv = server();
    for raw in [
        &post_with("Content-Length: 10\r\n", "abc")[..],
        &post_chunked("/echo", "5\r\nab")[..],
        &b"GET /seq?n=1 HTTP/1.1\r\nHost: loc"[..],
    ] {
        let mut r = Reader::new(connect(srv.addr));
        r.send(raw);
        r.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let got = r.read_to_close();
        assert!(
            got.is_empty(),
            "incomplete request must not be answered: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
}

#[test]
fn short_body_then_timeout_is_408() {
    let mut cfg = test_config();
    cfg.http.body_gap_timeout = std::time::Duration::from_millis(300);
    let srv = spawn_test_server(cfg);
    assert_rejected(srv.addr, &post_with("Content-Length: 10\r\n", "abc"), 408);
}

// ---------------------------------------------------------------- S24

#[test]
fn invalid_request_pipelined_after_a_valid_one_gets_400_after_the_first_response() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    let mut raw = get("/seq?n=1");
    raw.extend(post_with(
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
        ABC_CHUNKED,
    ));
    raw.extend(get("/seq?n=3"));
    r.send(&raw);
    let first = r.response();
    assert_eq!(first.status_line(), status_line(200));
    assert_eq!(first.body_str(), "1");
    assert!(!first.closes());
    r.expect_error_close(400, "second pipelined request");
}

#[test]
fn invalid_request_pipelined_after_a_pool_request_waits_for_its_response() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    // The first request is answered on the worker pool, after the invalid one has arrived.
    let mut raw = get("/demo/sleep?ms=50");
    raw.extend(b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1, 2\r\n\r\n");
    r.send(&raw);
    let first = r.response();
    assert_eq!(first.status_line(), status_line(200));
    assert_eq!(first.body_str(), "slept 50 ms\n");
    assert!(!first.closes());
    r.expect_error_close(400, "invalid request after a pool request");
}

// ---------------------------------------------------------------- S25

#[test]
fn expect_other_than_100_continue_is_417() {
    let srv = server();
    assert_rejected(
        srv.addr,
        b"GET /seq?n=1 HTTP/1.1\r\nHost: localhost\r\nExpect: foo\r\n\r\n",
        417,
    );
    assert_rejected(
        srv.addr,
        &post_with("Expect: 200-ok\r\nContent-Length: 3\r\n", "abc"),
        417,
    );
}

// ---------------------------------------------------------------- S26

#[test]
fn connection_close_on_the_request_is_honoured() {
    let srv = server();
    for conn in ["close", "CLOSE", "keep-alive, close", "Upgrade, close"] {
        let mut r = Reader::new(connect(srv.addr));
        let mut raw =
            format!("GET /seq?n=1 HTTP/1.1\r\nHost: localhost\r\nConnection: {conn}\r\n\r\n")
                .into_bytes();
        raw.extend(get("/seq?n=2"));
        r.send(&raw);
        let resp = r.response();
        assert_eq!(resp.status_line(), status_line(200), "{conn}");
        assert_eq!(resp.body_str(), "1");
        assert!(resp.closes(), "{conn}: response must say Connection: close");
        let rest = r.read_to_close();
        assert!(
            rest.is_empty(),
            "{conn}: nothing after the close: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

// ---------------------------------------------------------------- S27

#[test]
fn error_with_unread_input_still_delivers_the_response() {
    let mut cfg = test_config();
    cfg.http.max_body_bytes = 1024;
    let srv = spawn_test_server(cfg);
    let mut r = Reader::new(connect(srv.addr));
    let mut raw =
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 200000\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'x', 200_000));
    // The server may stop reading (and close) before all of this is written.
    r.send_lossy(&raw);
    let resp = r.response();
    assert_eq!(resp.status_line(), status_line(413));
    assert!(resp.closes());
    assert!(r.closed());
}

#[test]
fn error_with_a_little_unread_input_is_delivered_then_closed() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    let mut raw = post_with(
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
        ABC_CHUNKED,
    );
    raw.extend(std::iter::repeat_n(b'y', 30_000));
    r.send(&raw);
    r.expect_error_close(400, "CL+TE with trailing junk");
}

// ---------------------------------------------------------------- S28

#[test]
fn request_without_cl_or_te_has_no_body_and_next_bytes_are_the_next_request() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    let mut raw = b"POST /echo HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
    raw.extend(get("/seq?n=2"));
    r.send(&raw);
    let first = r.response();
    assert_eq!(first.status_line(), status_line(200));
    assert_eq!(first.body_str(), "");
    assert_eq!(first.header("content-length"), Some("0"));
    let second = r.response();
    assert_eq!(second.body_str(), "2");
    // Bytes after a body-less request that are not a request are a bad request.
    r.send(b"POST /echo HTTP/1.1\r\nHost: localhost\r\n\r\nabc\r\n\r\n");
    assert_eq!(r.response().body_str(), "");
    r.expect_error_close(400, "garbage after a body-less request");
}

// ---------------------------------------------------------------- R1

#[test]
fn head_gets_headers_only_with_content_length() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    let mut raw = b"HEAD /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
    raw.extend(get("/seq?n=2"));
    r.send(&raw);
    let head = r.response_to("HEAD");
    assert_eq!(head.status_line(), status_line(200));
    assert_eq!(head.header("content-length"), Some("13"));
    assert!(head.header("transfer-encoding").is_none());
    // If the HEAD response carried a body, this would not parse as the next response.
    let next = r.response();
    assert_eq!(next.status_line(), status_line(200));
    assert_eq!(next.body_str(), "2");
}

#[test]
fn no_content_response_has_no_content_length_and_no_body() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    let mut raw = get("/nocontent");
    raw.extend(get("/seq?n=2"));
    r.send(&raw);
    let resp = r.response();
    assert_eq!(resp.status_line(), status_line(204));
    assert!(resp.header("content-length").is_none(), "{:?}", resp.head);
    assert!(
        resp.header("transfer-encoding").is_none(),
        "{:?}",
        resp.head
    );
    assert_eq!(r.response().body_str(), "2");
}

#[test]
fn responses_never_carry_both_content_length_and_transfer_encoding() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    for path in [
        "/plaintext",
        "/json",
        "/seq?n=1",
        "/nope",
        "/nocontent",
        "/health/live",
    ] {
        r.send(&get(path));
        let resp = r.response();
        assert!(
            !(resp.header("content-length").is_some()
                && resp.header("transfer-encoding").is_some()),
            "{path}: {:?}",
            resp.head
        );
    }
}

#[test]
fn error_response_to_a_head_request_has_no_body() {
    let srv = server();
    for raw in [
        &b"HEAD /plaintext HTTP/1.1\r\nHost: localhost\r\nExpect: foo\r\n\r\n"[..],
        &b"HEAD /plaintext HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999\r\n\r\n"[..],
    ] {
        let mut r = Reader::new(connect(srv.addr));
        r.send(raw);
        let resp = r.response_to("HEAD");
        assert!(resp.status >= 400 && resp.closes(), "{:?}", resp.head);
        let rest = r.read_to_close();
        assert!(
            rest.is_empty(),
            "{:?}: a response to HEAD must not carry content: {:?}",
            String::from_utf8_lossy(raw),
            String::from_utf8_lossy(&rest)
        );
    }
}

// ---------------------------------------------------------------- R2

#[test]
fn handler_header_with_cr_lf_or_nul_is_500() {
    let srv = server();
    for kind in ["cr", "lf", "nul", "name"] {
        let mut r = Reader::new(connect(srv.addr));
        r.send(&get(&format!("/bad-header?kind={kind}")));
        let resp = r.response();
        assert_eq!(resp.status_line(), status_line(500), "{kind}");
        assert!(resp.header("injected").is_none(), "{kind}: {:?}", resp.head);
        assert!(resp.header("x-bad").is_none(), "{kind}: {:?}", resp.head);
        assert!(!resp.body_str().contains("should not be sent"));
        // The connection stays in frame: the next request is answered.
        if !resp.closes() {
            r.send(&get("/seq?n=2"));
            assert_eq!(r.response().body_str(), "2");
        }
    }
}

// ---------------------------------------------------------------- R4

#[test]
fn every_closing_response_says_connection_close() {
    let mut cfg = test_config();
    cfg.http.max_requests_per_conn = 1;
    let srv = spawn_test_server(cfg);
    for raw in [
        &b"GET /seq?n=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], // L8: last allowed request
        &b"GET /seq?n=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"[..],
        &b"GET /seq?n=1 HTTP/1.0\r\n\r\n"[..],
        &b"GET /nope HTTP/1.1\r\n\r\n"[..],
        &b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n"[..],
    ] {
        let mut r = Reader::new(connect(srv.addr));
        r.send(raw);
        let resp = r.response();
        assert!(
            resp.closes(),
            "{:?}: {:?}",
            String::from_utf8_lossy(raw),
            resp.head
        );
        assert!(r.closed(), "{:?}", String::from_utf8_lossy(raw));
    }
}

// ---------------------------------------------------------------- HTTP/1.0

#[test]
fn http10_without_keep_alive_closes_after_the_response() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    r.send(b"GET /seq?n=1 HTTP/1.0\r\n\r\nGET /seq?n=2 HTTP/1.0\r\n\r\n");
    let resp = r.response();
    assert_eq!(resp.status_line(), status_line(200));
    assert_eq!(resp.body_str(), "1");
    assert!(resp.closes(), "{:?}", resp.head);
    let rest = r.read_to_close();
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}

#[test]
fn http10_with_connection_keep_alive_stays_open() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    for i in 1..=3 {
        r.send(format!("GET /seq?n={i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes());
        let resp = r.response();
        assert_eq!(resp.status_line(), status_line(200));
        assert_eq!(resp.body_str(), i.to_string());
        assert_eq!(
            resp.header("connection")
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("keep-alive")
        );
    }
    r.send(b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(r.response().body_str(), "hi");
}

#[test]
fn http10_expect_100_continue_is_ignored() {
    let srv = server();
    let mut r = Reader::new(connect(srv.addr));
    r.send(b"POST /echo HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi");
    let resp = r.response();
    assert_eq!(
        resp.status_line(),
        status_line(200),
        "no interim 100 for HTTP/1.0"
    );
    assert_eq!(resp.body_str(), "hi");
}
