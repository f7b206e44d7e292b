#!/usr/bin/env python3
"""A connection flood that holds its sockets: idle ones, or open SSE streams.

    python3 flood.py --port 8080 --mode idle --conns 1000 --hold 10
    python3 flood.py --port 8080 --mode sse  --conns 300  --hold 10

idle: connect and send nothing, the cheapest way to take a slot.
sse:  `GET /demo/ticker` on each and keep reading what arrives, so the
      server sees a healthy long-lived stream, not a stuck one.

Non-blocking sockets on one epoll. Connects past the server's cap and its
kernel backlog stay pending (SYNs retried by the kernel); that is part of
the attack, so the flood does not wait for them: it prints `READY {json}`
once every socket is connected or `--settle` seconds have passed, holds
everything for `--hold` seconds more, closes, and prints `RESULT {json}`.
The server closing a socket is counted, not retried.
Loopback only.
"""

import argparse
import errno
import json
import resource
import select
import socket
import time


def raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(need, soft)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("idle", "sse"), default="idle")
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--hold", type=float, default=10)
    ap.add_argument("--settle", type=float, default=5)
    ap.add_argument("--burst", type=int, default=256, help="connects started per step")
    a = ap.parse_args()
    assert a.host in ("127.0.0.1", "localhost"), "loopback only"
    raise_nofile(a.conns + 100)

    ep = select.epoll()
    socks: dict[int, socket.socket] = {}
    state: dict[int, str] = {}  # connecting, connected, streaming, closed
    refused = 0
    closed_by_server = 0
    bytes_in = 0
    req = f"GET /demo/ticker HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n\r\n".encode()

    def close(fd: int) -> None:
        ep.unregister(fd)
        socks.pop(fd).close()

    def handle(fd: int, ev: int) -> None:
        nonlocal refused, closed_by_server, bytes_in
        s = socks[fd]
        if state[fd] == "connecting":
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                refused += 1
                state[fd] = "closed"
                close(fd)
                return
            state[fd] = "connected"
            if a.mode == "sse":
                s.send(req)
            ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
            return
        while True:
            try:
                data = s.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                closed_by_server += 1
                state[fd] = "closed"
                close(fd)
                return
            if state[fd] == "connected" and data.startswith(b"HTTP/1.1 200"):
                state[fd] = "streaming"
            bytes_in += len(data)

    def pump(timeout: float) -> None:
        for fd, ev in ep.poll(timeout):
            if fd in socks:
                handle(fd, ev)

    t0 = time.monotonic()
    started = 0
    while started < a.conns:
        for _ in range(min(a.burst, a.conns - started)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex((a.host, a.port))
            started += 1
            if rc not in (0, errno.EINPROGRESS):
                refused += 1
                s.close()
                continue
            socks[s.fileno()] = s
            state[s.fileno()] = "connecting"
            ep.register(s.fileno(), select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP)
        pump(0.01)

    def counts() -> dict:
        c = {"connecting": 0, "connected": 0, "streaming": 0}
        for fd in socks:
            c[state[fd]] += 1
        return c

    settle_until = time.monotonic() + a.settle
    while time.monotonic() < settle_until and counts()["connecting"]:
        pump(0.05)
    # For SSE, give the server a moment to answer the streams it accepted.
    if a.mode == "sse":
        until = time.monotonic() + 1
        while time.monotonic() < until:
            pump(0.05)
    ready = {"open_s": round(time.monotonic() - t0, 2), **counts(), "refused": refused,
             "closed_by_server": closed_by_server}
    print("READY " + json.dumps(ready), flush=True)

    hold_until = time.monotonic() + a.hold
    while time.monotonic() < hold_until:
        pump(0.1)
    res = {**ready, "end": counts(), "closed_by_server": closed_by_server, "bytes_in": bytes_in}
    for fd in list(socks):
        close(fd)
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
