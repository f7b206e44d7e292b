#!/usr/bin/env python3
"""Differential check: the same raw requests sent to a running Conduit and fed
to two reference parsers, h11 (pure Python) and httptools (llhttp, Node's
parser). Prints one row per case.

Not part of `cargo test`; run by hand:

    pip install h11==0.16.0 httptools==0.9.0
    cargo build
    python3 tests/differential/differential.py            # starts target/debug/conduit
    python3 tests/differential/differential.py --port 8080 # uses a running server

Verdicts: `ok NNN` = the request was framed and answered (404/405 count, the
routes are the built-in ones); `rej NNN` = refused with that status;
`timeout` = no answer within the read timeout (waiting for more bytes);
`closed` = closed without a response. For the parsers: `ok`, `rej` (parse
error) or `more` (wants more bytes). SECURITY.md §3: our verdict must be a
rejection wherever either strict oracle rejects on framing grounds; the
`note` column flags rows where Conduit accepts what an oracle rejects.
"""

import argparse
import os
import socket
import subprocess
import sys
import time

import h11
import httptools

H = b"Host: localhost\r\n"
ABC = b"3\r\nabc\r\n0\r\n\r\n"


def post(fields: bytes, body: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return b"POST /plaintext " + version + b"\r\n" + fields + b"\r\n" + body


CASES = [
    ("plain GET", b"GET /plaintext HTTP/1.1\r\n" + H + b"\r\n"),
    ("S1 CL+TE", post(H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", ABC)),
    ("S2 CL 3 then 4", post(H + b"Content-Length: 3\r\nContent-Length: 4\r\n", b"abcd")),
    ("S2 CL '3, 4'", post(H + b"Content-Length: 3, 4\r\n", b"abcd")),
    ("S3 CL 3 twice", post(H + b"Content-Length: 3\r\nContent-Length: 3\r\n", b"abc")),
    ("S3 CL '3, 3'", post(H + b"Content-Length: 3, 3\r\n", b"abc")),
    ("S4 CL +3", post(H + b"Content-Length: +3\r\n", b"abc")),
    ("S4 CL -1", post(H + b"Content-Length: -1\r\n", b"abc")),
    ("S4 CL 0x3", post(H + b"Content-Length: 0x3\r\n", b"abc")),
    ("S4 CL '3 4'", post(H + b"Content-Length: 3 4\r\n", b"abc")),
    ("S4 CL empty", post(H + b"Content-Length: \r\n", b"abc")),
    ("S4 CL 1_0", post(H + b"Content-Length: 1_0\r\n", b"abc")),
    ("S4 CL overflow", post(H + b"Content-Length: 18446744073709551616\r\n", b"abc")),
    ("S5 TE gzip", post(H + b"Transfer-Encoding: gzip\r\n", b"abc")),
    ("S5 TE chunked, gzip", post(H + b"Transfer-Encoding: chunked, gzip\r\n", ABC)),
    ("S6 TE xchunked", post(H + b"Transfer-Encoding: xchunked\r\n", ABC)),
    ("S6 TE identity", post(H + b"Transfer-Encoding: identity\r\n", b"abc")),
    ("S6 TE chunkedx", post(H + b"Transfer-Encoding: chunkedx\r\n", ABC)),
    ("S7 TE chunked, chunked", post(H + b"Transfer-Encoding: chunked, chunked\r\n", ABC)),
    ("S7 two TE chunked", post(H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", ABC)),
    ("S8 TE Chunked", post(H + b"Transfer-Encoding: Chunked\r\n", ABC)),
    ("S8 TE ' chunked '", post(H + b"Transfer-Encoding:  chunked \r\n", ABC)),
    ("S8 TE ', chunked'", post(H + b"Transfer-Encoding: , chunked\r\n", ABC)),
    ("S9 TE in HTTP/1.0", post(b"Transfer-Encoding: chunked\r\n", ABC, b"HTTP/1.0")),
    ("S10 'Content-Length :'", post(H + b"Content-Length : 3\r\n", b"abc")),
    ("S10 'Transfer-Encoding\\t:'", post(H + b"Transfer-Encoding\t: chunked\r\n", ABC)),
    ("S11 obs-fold", b"GET /plaintext HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n"),
    ("S12 SP before 1st field", b"GET /plaintext HTTP/1.1\r\n Host: localhost\r\n\r\n"),
    ("S13 bare LF", b"GET /plaintext HTTP/1.1\nHost: localhost\n\n"),
    ("S14 CR in value", b"GET /plaintext HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n"),
    ("S14 NUL in value", b"GET /plaintext HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n"),
    ("S15 'X Y:'", b"GET /plaintext HTTP/1.1\r\n" + H + b"X Y: z\r\n\r\n"),
    ("S15 ':v'", b"GET /plaintext HTTP/1.1\r\n" + H + b": v\r\n\r\n"),
    ("S15 '\\x85X:'", b"GET /plaintext HTTP/1.1\r\n" + H + b"\x85X: z\r\n\r\n"),
    ("S16 double SP", b"GET  /plaintext HTTP/1.1\r\n" + H + b"\r\n"),
    ("S16 SP in target", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n"),
    ("S16 HTTP/1.10", b"GET /plaintext HTTP/1.10\r\n" + H + b"\r\n"),
    ("S16 HTTP/2.0", b"GET /plaintext HTTP/2.0\r\n" + H + b"\r\n"),
    ("S17 no Host", b"GET /plaintext HTTP/1.1\r\n\r\n"),
    ("S17 two Hosts", b"GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("S17 Host 'a b'", b"GET /plaintext HTTP/1.1\r\nHost: a b\r\n\r\n"),
    ("S18 absolute-form", b"GET http://evil/plaintext HTTP/1.1\r\n" + H + b"\r\n"),
    ("S19 size 0x3", post(H + b"Transfer-Encoding: chunked\r\n", b"0x3\r\nabc\r\n0\r\n\r\n")),
    ("S19 size ' 3'", post(H + b"Transfer-Encoding: chunked\r\n", b" 3\r\nabc\r\n0\r\n\r\n")),
    ("S19 size +3", post(H + b"Transfer-Encoding: chunked\r\n", b"+3\r\nabc\r\n0\r\n\r\n")),
    ("S19 size empty", post(H + b"Transfer-Encoding: chunked\r\n", b"\r\nabc\r\n0\r\n\r\n")),
    ("S19 size overflow", post(H + b"Transfer-Encoding: chunked\r\n", b"fffffffffffffffff1\r\nabc\r\n0\r\n\r\n")),
    ("S19 bare LF after size", post(H + b"Transfer-Encoding: chunked\r\n", b"3\nabc\r\n0\r\n\r\n")),
    ("S20 data then X", post(H + b"Transfer-Encoding: chunked\r\n", b"3\r\nabcX0\r\n\r\n")),
    ("S20 data then CR X", post(H + b"Transfer-Encoding: chunked\r\n", b"3\r\nabc\rX0\r\n\r\n")),
    ("S20 data then LF", post(H + b"Transfer-Encoding: chunked\r\n", b"3\r\nabc\n0\r\n\r\n")),
    ("S21 valid ext", post(H + b"Transfer-Encoding: chunked\r\n", b"3;a=b\r\nabc\r\n0\r\n\r\n")),
    ("S21 CR in ext", post(H + b"Transfer-Encoding: chunked\r\n", b"3;a\rb\r\nabc\r\n0\r\n\r\n")),
    ("S22 trailer", post(H + b"Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")),
    ("S22 bad trailer", post(H + b"Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\nX T: 1\r\n\r\n")),
    ("S25 Expect: foo", b"GET /plaintext HTTP/1.1\r\n" + H + b"Expect: foo\r\n\r\n"),
    ("S28 no CL/TE + bytes", b"POST /plaintext HTTP/1.1\r\n" + H + b"\r\nGET /plaintext HTTP/1.1\r\n" + H + b"\r\n"),
]


# Rows where accepting against an oracle is a deliberate choice: S3 (RFC 9112
# §6.3(5) allows identical CLs; llhttp rejects) and S8 (RFC 9110 §5.6.1: empty
# list elements are ignored; h11 rejects).
EXPECTED_DIFF = {"S3 CL 3 twice", "S3 CL '3, 3'", "S8 TE ', chunked'"}


def conduit_verdict(port: int, raw: bytes, timeout: float) -> str:
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(timeout)
    try:
        s.sendall(raw)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return "closed" if not data else "garbage"
            data += chunk
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        return "reset"
    finally:
        s.close()
    parts = data.split(b"\r\n", 1)[0].split(b" ")
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return ("ok " if status < 400 or status in (404, 405) else "rej ") + str(status)


def h11_verdict(raw: bytes) -> str:
    c = h11.Connection(h11.SERVER)
    c.receive_data(raw)
    try:
        while True:
            ev = c.next_event()
            if ev is h11.NEED_DATA:
                return "more"
            if isinstance(ev, h11.EndOfMessage):
                return "ok"
            if ev is h11.PAUSED:
                return "ok"
    except h11.RemoteProtocolError as e:
        return "rej " + str(e.error_status_hint)


def llhttp_verdict(raw: bytes) -> str:
    done = []

    class P:
        def on_message_complete(self):
            done.append(True)

    p = httptools.HttpRequestParser(P())
    try:
        p.feed_data(raw)
    except httptools.HttpParserUpgrade:
        return "ok (upgrade)"
    except httptools.HttpParserError as e:
        if done:
            return "ok"  # first message complete; error is in what follows
        return "rej (" + str(e).split(":")[0][:24] + ")"
    return "ok" if done else "more"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port: int, deadline: float) -> None:
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"conduit did not start listening on {port}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, help="port of a running conduit (default: start one)")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "..", "target", "debug", "conduit"))
    ap.add_argument("--timeout", type=float, default=1.5, help="seconds to wait for each answer")
    args = ap.parse_args()

    proc = None
    port = args.port
    if port is None:
        port = free_port()
        env = dict(os.environ, CONDUIT_HTTP_HEAD_TIMEOUT_MS="1000", CONDUIT_HTTP_BODY_GAP_TIMEOUT_MS="1000")
        proc = subprocess.Popen(
            [args.bin, "serve", "--listen", f"127.0.0.1:{port}", "--io-threads", "1"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_listening(port, time.time() + 10)
    try:
        rows = []
        for name, raw in CASES:
            c = conduit_verdict(port, raw, args.timeout)
            h = h11_verdict(raw)
            l = llhttp_verdict(raw)
            oracle_rejects = h.startswith("rej") or l.startswith("rej")
            note = ""
            if c.startswith("ok") and oracle_rejects:
                note = "expected (SECURITY.md)" if name in EXPECTED_DIFF else "CHECK: accepted, an oracle rejects"
            rows.append((name, c, h, l, note))
        w = [max(len(r[i]) for r in rows + [("case", "conduit", "h11", "llhttp", "note")]) for i in range(5)]
        fmt = "  ".join("{:<%d}" % x for x in w)
        print(fmt.format("case", "conduit", "h11", "llhttp", "note"))
        print(fmt.format(*("-" * x for x in w)))
        for r in rows:
            print(fmt.format(*r))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
