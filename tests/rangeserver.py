"""A real HTTP server on 127.0.0.1 that serves one file with Range requests (as GCS does).

Python's http.server ignores Range; remotezip needs it. The server counts bytes served and
can misbehave as real servers and links do: drop its first N requests (connection closed
without an answer) or answer them with an error status; cut the body of its first N ranged
answers half-way (``cut_bodies``), or of its first N central-directory reads (``cut_tail``);
stall half-way for a while (``stall_bodies``, ``stall_s``); or trickle its first N ranged
answers (``trickle_bodies``): ``trickle_bytes`` bytes one at a time, ``trickle_s`` apart, then
close. ``dead_data`` makes it answer the central directory but never a member's bytes: every
other ranged request gets that status (with ``Retry-After: retry_after`` if given), or, with
``"stall"``, headers and then nothing for ``stall_s``.
"""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class RangeServer:
    def __init__(self, path: Path, drop_first: int = 0, fail_first_with: int | None = None,
                 cut_bodies: int = 0, cut_tail: int = 0, stall_bodies: int = 0,
                 stall_s: float = 0.0, trickle_bodies: int = 0, trickle_bytes: int = 0,
                 trickle_s: float = 0.0, dead_data: int | str | None = None,
                 retry_after: int | None = None):
        self.dead_data, self.retry_after = dead_data, retry_after
        self.requests_dead = 0
        self.data = Path(path).read_bytes()
        self.cut_bodies, self.cut_tail = cut_bodies, cut_tail
        self.stall_bodies, self.stall_s = stall_bodies, stall_s
        self.trickle_bodies = trickle_bodies
        self.trickle_bytes, self.trickle_s = trickle_bytes, trickle_s
        self.cuts = 0
        self.bytes_served = 0
        self.requests = 0
        self.drop_first = drop_first
        self.fail_first_with = fail_first_with
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _misbehave(self) -> bool:
                with server._lock:
                    server.requests += 1
                    n = server.requests
                if n <= server.drop_first:
                    if server.fail_first_with:
                        self.send_response(server.fail_first_with)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    else:
                        self.close_connection = True
                        self.connection.shutdown(2)  # dropped: no status line at all
                    return True
                return False

            def _dead(self) -> None:
                with server._lock:
                    server.requests_dead += 1
                if server.dead_data == "stall":
                    time.sleep(server.stall_s)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(int(server.dead_data))
                if server.retry_after is not None:
                    self.send_header("Retry-After", str(server.retry_after))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self):
                if self._misbehave():
                    return
                if self.path != "/archive.zip":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.data)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

            def do_GET(self):
                if self._misbehave():
                    return
                if self.path not in ("/archive.zip", "/notzip.zip"):
                    self.send_error(404)
                    return
                data = server.data if self.path == "/archive.zip" else b"<html>hello</html>" * 10
                size = len(data)
                m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
                if m and m[1] and m[2] and int(m[2]) < size - 1 and server.dead_data is not None:
                    self._dead()  # a member's bytes: never
                    return
                if not m:
                    start, end = 0, size - 1
                    self.send_response(200)
                elif m[1] == "":
                    start, end = max(0, size - int(m[2])), size - 1
                    self.send_response(206)
                else:
                    start = int(m[1])
                    end = min(size - 1, int(m[2])) if m[2] else size - 1
                    self.send_response(206)
                if m:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                body = data[start : end + 1]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                tail = m is not None and end == size - 1  # remotezip's central directory reads
                with server._lock:
                    mode = None
                    if m and len(body) > 64 and not tail and server.cut_bodies > 0:
                        server.cut_bodies -= 1
                        mode = "cut"
                    elif tail and len(body) > 64 and server.cut_tail > 0:
                        server.cut_tail -= 1
                        mode = "cut"
                    elif m and len(body) > 64 and not tail and server.stall_bodies > 0:
                        server.stall_bodies -= 1
                        mode = "stall"
                    elif m and len(body) > 64 and not tail and server.trickle_bodies > 0:
                        server.trickle_bodies -= 1
                        mode = "trickle"
                    if mode:
                        server.cuts += 1
                try:
                    if mode in ("cut", "stall"):
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        if mode == "stall":
                            time.sleep(server.stall_s)
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if mode == "trickle":
                        for b in body[: server.trickle_bytes]:
                            self.wfile.write(bytes([b]))
                            self.wfile.flush()
                            time.sleep(server.trickle_s)
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    return
                with server._lock:
                    server.bytes_served += len(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/archive.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> RangeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
