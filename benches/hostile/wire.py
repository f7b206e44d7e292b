"""One HTTP/1.1 response read off a socket, for the hostile-input clients."""

import socket


def read_response(s: socket.socket, bufsize: int = 4096) -> tuple[int, bytes]:
    """Reads one Content-Length framed response; returns (status, body).
    Raises EOFError if the connection ends before the head or the body does."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(bufsize)
        if not chunk:
            raise EOFError
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(rest) < length:
        chunk = s.recv(bufsize)
        if not chunk:
            raise EOFError
        rest += chunk
    return int(lines[0].split()[1]), rest[:length]
