"""A stand-in for systemd's notification socket: binds an AF_UNIX SOCK_DGRAM socket at argv[1]
and prints every datagram as one JSON line {"fields": [...], "fds": N}. File descriptors sent
along (systemd-notify's BARRIER=1 passes one and waits until the manager closes it) are closed at
once, as systemd does. Prints {"listening": path} first. Ends on SIGTERM or when stdin closes."""
import array
import json
import os
import select
import socket
import sys

path = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
print(json.dumps({"listening": path}), flush=True)
fd_size = array.array("i").itemsize
while True:
    ready, _, _ = select.select([sock, sys.stdin], [], [])
    if sys.stdin in ready and not sys.stdin.buffer.read1(4096):
        break
    if sock not in ready:
        continue
    msg, ancillary, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(16 * fd_size))
    fds = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(array.array("i", data[: len(data) - len(data) % fd_size]))
    for fd in fds:
        os.close(fd)
    print(json.dumps({"fields": msg.decode("utf-8", "replace").split("\n"), "fds": len(fds)}), flush=True)
os.unlink(path)
