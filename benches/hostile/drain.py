#!/usr/bin/env python3
"""Keep-alive clients that never stop, for a server that is told to stop.

    python3 drain.py --port 8080 [--clients 32] [--max-seconds 40]

Each client keeps one keep-alive connection and sends `GET /json` on it,
one request after another, with no pause. run.sh sends SIGTERM to the
server meanwhile. A request counts as **lost** when it was sent and the
connection then ended (EOF or reset) before its whole response arrived:
that is a request the server took in its socket and never answered
(SECURITY.md L17).

What a well-behaved client does is not counted as loss:
- before reusing an idle connection, it checks whether the server has
  already closed it (EOF waiting in the socket) and opens a new one
  instead, as HTTP clients do;
- after a response with `Connection: close` it closes and reconnects;
- a connect that is refused means the server stopped listening: that
  client is done.

Everything ends when every client is done or after --max-seconds.
The last line is `RESULT {json}`. Loopback only.
"""

import argparse
import json
import select
import socket
import threading
import time


class Client:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.req = f"GET /json HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        self.s = None
        self.buf = b""
        self.c = {"ok": 0, "lost": 0, "timeout": 0, "bad_status": 0, "conn_close": 0,
                  "idle_closed": 0, "send_failed": 0, "connects": 0}
        self.lost_how: list[str] = []

    def connect(self) -> bool:
        try:
            self.s = socket.create_connection((self.host, self.port), timeout=15)
        except OSError:
            return False
        self.c["connects"] += 1
        self.buf = b""
        return True

    def drop(self) -> None:
        if self.s is not None:
            self.s.close()
        self.s = None

    def peer_closed(self) -> bool:
        """True if the server already closed this idle connection."""
        r, _, _ = select.select([self.s], [], [], 0)
        if not r:
            return False
        try:
            return self.s.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def read_response(self):
        """Returns (status, close) or raises EOFError / OSError / TimeoutError."""
        while b"\r\n\r\n" not in self.buf:
            data = self.s.recv(65536)
            if not data:
                raise EOFError("EOF before the head")
            self.buf += data
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length, close = 0, False
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k, v = k.strip().lower(), v.strip().lower()
            if k == "content-length":
                length = int(v)
            elif k == "connection" and "close" in v:
                close = True
        while len(rest) < length:
            data = self.s.recv(65536)
            if not data:
                raise EOFError("EOF inside the body")
            rest += data
        self.buf = rest[length:]
        return status, close

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.s is None and not self.connect():
                return  # refused: the server is no longer listening
            if self.peer_closed():
                self.c["idle_closed"] += 1
                self.drop()
                continue
            try:
                self.s.sendall(self.req)
            except OSError:
                # The connection was reset before the request went out:
                # reported, but not a request the server took in and lost.
                self.c["send_failed"] += 1
                self.drop()
                continue
            try:
                status, close = self.read_response()
            except TimeoutError:
                self.c["timeout"] += 1
                self.drop()
                continue
            except (EOFError, OSError, ValueError, IndexError) as e:
                self.c["lost"] += 1
                self.lost_how.append(f"{type(e).__name__}: {e}")
                self.drop()
                continue
            self.c["ok" if status == 200 else "bad_status"] += 1
            if close:
                self.c["conn_close"] += 1
                self.drop()
        self.drop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--max-seconds", type=float, default=40)
    a = ap.parse_args()
    assert a.host in ("127.0.0.1", "localhost"), "loopback only"

    stop = threading.Event()
    clients = [Client(a.host, a.port) for _ in range(a.clients)]
    threads = [threading.Thread(target=c.run, args=(stop,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    print(f"LOADED {a.clients} clients", flush=True)
    deadline = time.monotonic() + a.max_seconds
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stop.set()
    for t in threads:
        t.join(16)

    total = {k: sum(c.c[k] for c in clients) for k in clients[0].c}
    how: dict[str, int] = {}
    for c in clients:
        for h in c.lost_how:
            how[h] = how.get(h, 0) + 1
    res = {"clients": a.clients, **total, "lost_how": how,
           "still_running": sum(t.is_alive() for t in threads)}
    print(f"drain: {res}")
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
