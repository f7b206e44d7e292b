#!/usr/bin/env python3
"""Server memory around one outsized inference request (SECURITY.md I8).

    python3 rejected.py --port 8080 --pid PID --kind demo-json  [--bytes 67108864]
    python3 rejected.py --port 8080 --pid PID --kind minilm-binary [--tokens 300000]

demo-json:     a JSON infer body of exactly --bytes (default 64 MiB, the
               default ml.max_input_bytes, so the size cap lets it in) for
               the demo model, with a wrong shape ([1,5] where the model
               takes [-1,4]) and --bytes worth of `0,` as data.
minilm-binary: a MiniLM request of --tokens tokens in one row, with the
               binary tensor extension: input_ids, attention_mask and
               token_type_ids INT64 [1, tokens] after a small JSON header
               (`Inference-Header-Content-Length`), 24 bytes per token.

First one small valid request warms the model (its one-time allocations are
not the outsized request's), then: VmRSS before; the request, with VmRSS
sampled every few ms from another thread (and VmHWM, the kernel's own
peak, compared before and after); the response; VmRSS again after --settle
seconds. If VmRSS passes --kill-above-mib the server is killed (SIGKILL to
--pid, which run.sh started) so one request cannot take the machine down.

The last line is `RESULT {json}`. Loopback only.
"""

import argparse
import json
import os
import signal
import socket
import struct
import threading
import time

from wire import read_response


def status_kib(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def exchange(host: str, port: int, head: bytes, body: bytes, timeout: float) -> tuple:
    """Sends one request; returns (status, first bytes of the body, note)."""
    s = socket.create_connection((host, port), timeout=timeout)
    note = ""
    try:
        s.sendall(head)
        try:
            s.sendall(body)
        except OSError as e:
            # The server may answer (and close) before it has read it all.
            note = f"send stopped: {type(e).__name__}"
        try:
            status, body = read_response(s, 65536)
        except EOFError:
            return None, b"", note or "EOF before a whole response"
        return status, body, note
    except (TimeoutError, OSError) as e:
        return None, b"", f"{type(e).__name__}: {e}"
    finally:
        s.close()


def request_head(host, port, path, length, extra=()) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {length}",
             *extra, "", ""]
    return "\r\n".join(lines).encode()


def demo_json(nbytes: int) -> tuple:
    prefix = b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1,5],"data":['
    suffix = b"]}]}"
    room = nbytes - len(prefix) - len(suffix)
    # `0,` repeated, and one more `0` if the room is odd; no trailing comma.
    data = b"0," * ((room - 1) // 2) + b"0" + (b" " if room % 2 == 0 else b"")
    body = prefix + data + suffix
    assert len(body) == nbytes, (len(body), nbytes)
    return body, ("Content-Type: application/json",)


def minilm_binary(tokens: int) -> tuple:
    size = tokens * 8
    header = json.dumps({"inputs": [
        {"name": n, "datatype": "INT64", "shape": [1, tokens],
         "parameters": {"binary_data_size": size}}
        for n in ("input_ids", "attention_mask", "token_type_ids")]}).encode()
    # Token 1000 is an ordinary word piece; the mask is all ones.
    body = header + struct.pack("<q", 1000) * tokens + struct.pack("<q", 1) * tokens + bytes(size)
    return body, ("Content-Type: application/octet-stream",
                  f"Inference-Header-Content-Length: {len(header)}")


WARM = {
    "demo-json": ("/v2/models/demo/infer", json.dumps({"inputs": [
        {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).encode(),
        ("Content-Type: application/json",)),
    "minilm-binary": ("/v2/models/minilm/infer", json.dumps({"inputs": [
        {"name": n, "datatype": "INT64", "shape": [1, 8], "data": [v] * 8}
        for n, v in (("input_ids", 1000), ("attention_mask", 1), ("token_type_ids", 0))]}).encode(),
        ("Content-Type: application/json",)),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--kind", choices=("demo-json", "minilm-binary"), required=True)
    ap.add_argument("--bytes", type=int, default=64 * 1024 * 1024)
    ap.add_argument("--tokens", type=int, default=300_000)
    ap.add_argument("--settle", type=float, default=2)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--kill-above-mib", type=int, default=8192)
    a = ap.parse_args()
    assert a.host in ("127.0.0.1", "localhost"), "loopback only"

    path, warm_body, warm_hdr = WARM[a.kind]
    st, _, _ = exchange(a.host, a.port, request_head(a.host, a.port, path, len(warm_body), warm_hdr),
                        warm_body, 30)
    if st != 200:
        print(f"warm-up request answered {st}; measuring anyway")
    body, extra = demo_json(a.bytes) if a.kind == "demo-json" else minilm_binary(a.tokens)
    nbytes = len(body)
    time.sleep(0.5)
    before = status_kib(a.pid)

    peak = [before["VmRSS"]]
    killed = [False]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                rss = status_kib(a.pid)["VmRSS"]
            except (OSError, KeyError):
                return
            peak[0] = max(peak[0], rss)
            if rss > a.kill_above_mib * 1024 and not killed[0]:
                killed[0] = True
                os.kill(a.pid, signal.SIGKILL)
                return
            time.sleep(0.003)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    st, resp, note = exchange(a.host, a.port, request_head(a.host, a.port, path, len(body), extra),
                              body, a.timeout)
    elapsed = time.monotonic() - t0
    del body
    time.sleep(a.settle)
    done.set()
    sampler.join()
    try:
        after = status_kib(a.pid)
    except OSError:
        after = {"VmRSS": None, "VmHWM": None}
    if after["VmHWM"] is not None and after["VmHWM"] > before["VmHWM"]:
        peak[0] = max(peak[0], after["VmHWM"])  # the kernel saw a higher peak than the sampler

    res = {
        "kind": a.kind, "body_bytes": nbytes, "status": st, "seconds": round(elapsed, 2),
        "response": resp.decode("utf-8", "replace")[:160], "note": note,
        "rss_before_kib": before["VmRSS"], "peak_kib": peak[0], "rss_after_kib": after["VmRSS"],
        "killed_at_guard": killed[0],
    }
    print(f"rejected {a.kind}: {res}")
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
