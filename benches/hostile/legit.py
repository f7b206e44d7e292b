#!/usr/bin/env python3
"""The legitimate client: `GET /json` at a fixed rate, each on a new connection.

    python3 legit.py --port 8080 [--seconds 6] [--rate 50] [--timeout 5]

A new connection per request because that is what an attack on accept
slots, caps and backlogs hurts: a user arriving during the attack. The
load is open-loop (a request starts every 1/rate s whether or not the
earlier ones have answered), so a stalled server cannot slow the prober
down and hide its own stall (coordinated omission).

Every request ends as one of: ok (200 with its whole body), bad_status,
lost (the request was sent, then EOF or reset before a whole response),
refused (connect failed at once) or timeout (no whole response within
--timeout, connect included). p50/p99 count every request that is not ok
as slower than any answer, so a p99 is "inf" when more than 1 % failed.

The last line is `RESULT {json}`. Loopback only.
"""

import argparse
import json
import math
import socket
import threading
import time

from wire import read_response


def probe(host: str, port: int, path: str, timeout: float, out: list) -> None:
    """One request on a new connection; appends (outcome, ms) to out."""
    t0 = time.perf_counter()
    deadline = t0 + timeout
    sent = False
    s = None
    try:
        try:
            s = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            # A connect stuck in a full backlog times out; a refused one not.
            out.append(("timeout" if isinstance(e, TimeoutError) else "refused", None))
            return
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        sent = True
        # The timeout bounds the whole exchange, not each read.
        s.settimeout(max(0.001, deadline - time.perf_counter()))
        status, _ = read_response(s)
        ms = (time.perf_counter() - t0) * 1000
        out.append(("ok" if status == 200 else "bad_status", ms))
    except TimeoutError:
        out.append(("timeout", None))
    except (EOFError, OSError, ValueError, IndexError):
        out.append(("lost" if sent else "refused", None))
    finally:
        if s is not None:
            s.close()


def percentile(sorted_ms: list, total: int, q: float) -> float:
    """q-quantile over `total` requests, the missing ones counted as infinite."""
    if total == 0:
        return math.nan
    rank = max(1, math.ceil(q * total))
    return sorted_ms[rank - 1] if rank <= len(sorted_ms) else math.inf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/json")
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--timeout", type=float, default=5)
    a = ap.parse_args()
    assert a.host in ("127.0.0.1", "::1", "localhost"), "loopback only"

    out: list = []  # list.append is atomic under the GIL
    threads = []
    n = max(1, int(a.seconds * a.rate))
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / a.rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        # A thread per request, blocking sockets: no event loop between the
        # socket and the clock, and a stalled request holds up nothing.
        t = threading.Thread(target=probe, args=(a.host, a.port, a.path, a.timeout, out))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()

    counts = {k: 0 for k in ("ok", "bad_status", "lost", "refused", "timeout")}
    for kind, _ in out:
        counts[kind] += 1
    ok_ms = sorted(ms for kind, ms in out if kind == "ok")
    res = {
        "n": len(out),
        **counts,
        "p50_ms": percentile(ok_ms, len(out), 0.50),
        "p99_ms": percentile(ok_ms, len(out), 0.99),
        "max_ok_ms": ok_ms[-1] if ok_ms else None,
    }
    print(
        f"legit: {res['n']} requests, ok {counts['ok']}, lost {counts['lost']}, "
        f"timeouts {counts['timeout']}, refused {counts['refused']}, "
        f"p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms"
    )
    # json.dumps writes inf as Infinity, which json.loads reads back.
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
