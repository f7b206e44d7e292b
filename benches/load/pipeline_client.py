"""A deterministic pipelined load for instruction counting (callgrind).

usage: pipeline_client.py PORT CONNS BATCHES [--wrk-heads] [--json] [--depth=N]
Sends BATCHES rounds of 16 (or N) pipelined `GET /plaintext` (`/json` with
--json) on each of CONNS
connections to 127.0.0.1:PORT and waits for every response. Bounded: it
stops after CONNS * BATCHES * 16 requests. --wrk-heads sends the heads
benches/load/run.sh has wrk send (TechEmpower's Host, Accept and
Connection), ~170 bytes instead of ~50. --depth=1 counts the
non-pipelined path: one request per connection per round.
"""
import socket
import sys

port, conns, batches = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
DEPTH = 16
for a in sys.argv[4:]:
    if a.startswith("--depth="):
        DEPTH = int(a.split("=", 1)[1])
path = b"/json" if "--json" in sys.argv[4:] else b"/plaintext"
if "--wrk-heads" in sys.argv[4:]:
    head = (
        b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\n"
        b"Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n"
        b"Connection: keep-alive\r\n\r\n"
    )
else:
    head = b"GET " + path + b" HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"
req = head * DEPTH
socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(conns)]
for _ in range(batches):
    for s in socks:
        s.sendall(req)
    for s in socks:
        buf = b""
        while buf.count(b"Hello, World!") < DEPTH:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("server closed the connection")
            buf += chunk
print("done", conns * batches * DEPTH)
