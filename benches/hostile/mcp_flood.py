#!/usr/bin/env python3
"""MCP session flood (SECURITY.md M18): anonymous initializes, then a new client.

    python3 mcp_flood.py --port 8080 [--count 1100] [--conns 4]

Sends --count `initialize` requests to POST /mcp (the request of README.md,
session era 2025-11-25) over --conns keep-alive connections and never uses
the sessions they open: an anonymous client filling the session table.
Then a new client initializes, sends `notifications/initialized` and calls
the `add` tool. It reports whether that client got a session and a result.

The last line is `RESULT {json}`. Loopback only.
"""

import argparse
import http.client
import json
import threading
import time

HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
}


def initialize_body(i: int) -> bytes:
    return json.dumps({
        "jsonrpc": "2.0", "id": i, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "hostile", "version": "1"}},
    }).encode()


def post(conn: http.client.HTTPConnection, body: bytes, extra=None):
    conn.request("POST", "/mcp", body=body, headers={**HEADERS, **(extra or {})})
    r = conn.getresponse()
    data = r.read()
    return r.status, r.getheader("mcp-session-id"), data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1100)
    ap.add_argument("--conns", type=int, default=4)
    a = ap.parse_args()
    assert a.host in ("127.0.0.1", "localhost"), "loopback only"

    statuses: dict[str, int] = {}
    lock = threading.Lock()
    next_i = iter(range(a.count))

    def flood() -> None:
        conn = http.client.HTTPConnection(a.host, a.port, timeout=10)
        while True:
            with lock:
                i = next(next_i, None)
            if i is None:
                break
            try:
                st, _, _ = post(conn, initialize_body(i))
                key = str(st)
            except (OSError, http.client.HTTPException) as e:
                key = type(e).__name__
                conn.close()
                conn = http.client.HTTPConnection(a.host, a.port, timeout=10)
            with lock:
                statuses[key] = statuses.get(key, 0) + 1
        conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=flood) for _ in range(a.conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flood_s = time.monotonic() - t0

    res = {"flood": statuses, "flood_s": round(flood_s, 2)}
    conn = http.client.HTTPConnection(a.host, a.port, timeout=10)
    try:
        st, sid, body = post(conn, initialize_body(1))
        res["new_init_status"] = st
        res["new_session"] = bool(sid)
        if not sid:
            res["new_error"] = body.decode("utf-8", "replace")[:200]
        else:
            post(conn, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode(),
                 {"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"})
            st, _, body = post(conn, json.dumps({
                "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "add", "arguments": {"a": 1, "b": 2}},
            }).encode(), {"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"})
            res["new_call_status"] = st
            text = body.decode("utf-8", "replace")
            res["new_call_ok"] = st == 200 and '"result"' in text and '"isError":true' not in text
            if not res["new_call_ok"]:
                res["new_error"] = text[:200]
    except (OSError, http.client.HTTPException) as e:
        res["new_error"] = f"{type(e).__name__}: {e}"
    res["new_client_ok"] = bool(res.get("new_session") and res.get("new_call_ok"))
    print(f"mcp flood: {statuses} in {flood_s:.1f}s; new client: {res}")
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
