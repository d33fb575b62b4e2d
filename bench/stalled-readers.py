"""Stalled readers for bench/hostile.bench.ts: COUNT SSE streams that read
their response head and then never read again, each with a tiny receive
window (SO_RCVBUF set before connect, so the kernel cannot absorb megabytes
on the client's side as it would for a paused Node socket).

    python3 bench/stalled-readers.py PORT COUNT PATH [RCVBUF]

Prints "ready <opened>" on stdout once every stream got its status line,
then holds the sockets until stdin closes (the orchestrator went away or
is done) and exits. Not run by npm test.
"""
import socket
import sys

port, count, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rcvbuf = int(sys.argv[4]) if len(sys.argv) > 4 else 4096
request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
held = []
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(request)
    first = s.recv(512)
    if not first.startswith(b"HTTP/1.1 200"):
        sys.stdout.write(f"error stream {i}: {first[:80]!r}\n")
        sys.stdout.flush()
        sys.exit(1)
    held.append(s)
sys.stdout.write(f"ready {len(held)}\n")
sys.stdout.flush()
sys.stdin.read()
