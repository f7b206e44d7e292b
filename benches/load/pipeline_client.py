"""A deterministic pipelined load for instruction counting (callgrind).

usage: pipeline_client.py PORT CONNS BATCHES
Sends BATCHES rounds of 16 pipelined `GET /plaintext` on each of CONNS
connections to 127.0.0.1:PORT and waits for every response. Bounded: it
stops after CONNS * BATCHES * 16 requests.
"""
import socket
import sys

port, conns, batches = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
DEPTH = 16
req = b"GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\n\r\n" * DEPTH
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
