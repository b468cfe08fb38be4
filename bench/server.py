"""Static server for the benchmark pages: repo root on 127.0.0.1, cross-origin isolated, counts bytes.

Every response carries ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy:
require-corp`` (so onnxruntime-web may use threads: SharedArrayBuffer needs ``crossOriginIsolated``) and
``Cache-Control: no-store`` (every page open is a cold load).  ``bytes_sent`` / ``requests`` count what the
pages fetched since the last ``reset()``: that is figure (d), measured on the wire, workers included.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parent.parent


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = dict(http.server.SimpleHTTPRequestHandler.extensions_map,
                          **{".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
                             ".json": "application/json", ".data": "application/octet-stream",
                             ".onnx": "application/octet-stream", ".toml": "text/plain", ".py": "text/plain"})

    def end_headers(self):
        # the app itself is served as GitHub Pages would: no isolation headers (web/coi-sw.js adds them); but the
        # kernel's helper thread (a worker script) is also started by the benchmark's isolated worker, whose
        # nested worker must carry COEP like its owner (web/coi-sw.js gives it the same headers on the site)
        if not self.path.startswith("/web/") or self.path.split("?")[0] == "/web/gemm-thread.js":
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def copyfile(self, source, outputfile):
        n = 0
        while True:
            buf = source.read(1 << 16)
            if not buf:
                break
            outputfile.write(buf)
            n += len(buf)
        self.server.count(self.path, n)

    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self._lock = threading.Lock()
        self.log: List[Tuple[str, int]] = []

    def count(self, path: str, n: int) -> None:
        with self._lock:
            self.log.append((path, n))


class BenchServer:
    def __init__(self, root: Path = ROOT):
        handler = functools.partial(_Handler, directory=str(root))
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.origin = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "BenchServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self) -> None:
        with self.httpd._lock:
            self.httpd.log.clear()

    def fetched(self) -> List[Tuple[str, int]]:
        with self.httpd._lock:
            return list(self.httpd.log)

    def bytes_sent(self, predicate=None) -> int:
        return sum(n for p, n in self.fetched() if predicate is None or predicate(p))
