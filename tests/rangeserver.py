"""A real HTTP server on 127.0.0.1 that serves one file with Range requests (as GCS does).

Python's http.server ignores Range; remotezip needs it. The server counts bytes served and
can drop its first N requests (connection closed without an answer) or answer 503.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class RangeServer:
    def __init__(self, path: Path, drop_first: int = 0, fail_first_with: int | None = None):
        self.data = Path(path).read_bytes()
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
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return
                with server._lock:
                    server.bytes_served += len(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/archive.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "RangeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
