#!/usr/bin/env python3
"""Memory per idle keep-alive connection.

Opens N keep-alive connections to a server, sends one `GET /plaintext` on
each and reads the whole response, so that every connection is afterwards an
idle keep-alive connection. Reads the server's VmRSS (from /proc/PID/status)
before opening and again once all connections are idle, and prints the
difference per connection in KiB.

    python3 idle_conns.py --port 8080 --pid 12345 [--conns 10000]

The last line of output is machine-readable: `RESULT key=value ...`.

Only talks to loopback addresses (the server under test on this machine).
"""

import argparse
import asyncio
import resource
import sys
import time


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def raise_nofile(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(need, soft)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked); return status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = None
    chunked = False
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        if k == "content-length":
            length = int(v.strip())
        elif k == "transfer-encoding" and "chunked" in v.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def open_one(host, port, path, sem, conns, errors):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Connection: keep-alive\r\n\r\n".encode()
            )
            await writer.drain()
            status = await asyncio.wait_for(read_response(reader), 10)
            if status != 200:
                errors[f"status {status}"] = errors.get(f"status {status}", 0) + 1
            conns.append((reader, writer))
        except Exception as e:  # noqa: BLE001 - count and go on
            key = type(e).__name__
            errors[key] = errors.get(key, 0) + 1


async def open_many(host, port, path, n, concurrency):
    sem = asyncio.Semaphore(concurrency)
    conns, errors = [], {}
    await asyncio.gather(*(open_one(host, port, path, sem, conns, errors) for _ in range(n)))
    return conns, errors


async def main_async(a) -> int:
    # Warm-up: a few connections opened and closed first, so one-time costs
    # (lazy allocations, buffer pools, thread stacks) are not charged to the
    # measured connections.
    if a.warmup > 0:
        w, _ = await open_many(a.host, a.port, a.path, a.warmup, a.concurrency)
        for _, wr in w:
            wr.close()
        await asyncio.sleep(0.5)

    rss0 = vm_rss_kib(a.pid)
    t0 = time.monotonic()
    conns, errors = await open_many(a.host, a.port, a.path, a.conns, a.concurrency)
    t_open = time.monotonic() - t0
    await asyncio.sleep(a.settle)
    rss1 = vm_rss_kib(a.pid)
    # Connections the server has closed meanwhile (its reader sees EOF).
    closed = sum(1 for r, _ in conns if r.at_eof())
    idle = len(conns) - closed
    elapsed = time.monotonic() - t0
    per = (rss1 - rss0) / idle if idle else float("nan")

    print(f"server pid {a.pid}: VmRSS before {rss0} KiB, with {idle} idle conns {rss1} KiB")
    print(f"opened {len(conns)}/{a.conns} in {t_open:.2f}s ({closed} closed by server before measuring; "
          f"measured {elapsed:.2f}s after the first connect)")
    for k, v in sorted(errors.items()):
        print(f"error: {v} x {k}")
    print(f"=> {per:.2f} KiB per idle keep-alive connection")
    print(f"RESULT conns={a.conns} idle={idle} failed={a.conns - len(conns)} closed={closed} "
          f"rss_before_kib={rss0} rss_after_kib={rss1} kib_per_conn={per:.3f} open_s={t_open:.2f}")
    for _, w in conns:
        w.close()
    return 0 if idle == a.conns else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="server pid (VmRSS is read from /proc)")
    p.add_argument("--conns", type=int, default=10000)
    p.add_argument("--path", default="/plaintext")
    p.add_argument("--concurrency", type=int, default=256, help="connections being opened at once")
    p.add_argument("--warmup", type=int, default=100, help="connections opened+closed before measuring")
    p.add_argument("--settle", type=float, default=1.0, help="seconds to wait once all are idle")
    a = p.parse_args()
    if not a.host.startswith("127.") and a.host not in ("localhost", "::1"):
        print("refusing: only loopback targets", file=sys.stderr)
        return 2
    limit = raise_nofile(a.conns + 100)
    if limit < a.conns + 100:
        print(f"warning: RLIMIT_NOFILE is {limit}, too low for {a.conns} connections", file=sys.stderr)
    return asyncio.run(main_async(a))


if __name__ == "__main__":
    sys.exit(main())
