"""The runtime floor the page relies on: Pyodide 0.17.1 + numpy 1.17.5, and the compat shim."""

from __future__ import annotations


def test_runtime_versions(pyodide):
    got = pyodide.run("import sys, numpy\n[sys.version_info[:2], numpy.__version__]")
    assert got == [[3, 8], "1.17.5"]


def test_rgba_copy_into_imagedata(pyodide):
    got = pyodide.run("""
import numpy as np
from js import ImageData
from pyapp.browser import compat
rgba = np.zeros((3, 5, 4), dtype=np.uint8)
rgba[..., 0] = np.arange(5)[None, :] * 50
rgba[..., 1] = np.arange(3)[:, None] * 100
rgba[..., 3] = 255
img = ImageData.new(compat.rgba_to_clamped(rgba), 5, 3)
data = img.data
[compat.copier_name(), int(img.width), int(img.height), [int(data[i]) for i in (0, 4, 16, 20 * 2 + 1, 59)]]
""")
    name, w, h, px = got
    assert name in ("assign", "to_js", "bytes")
    assert (w, h) == (5, 3)
    # pixel (0,0) red 0; (0,1) red 50; (0,4) red 200; (2,0) green 200; last alpha 255
    assert px == [0, 50, 200, 200, 255]


def test_fetch_bytes_streams_with_progress(pyodide, server):
    """pyapp.browser.fetch gets exact bytes, reports monotone progress, and names HTTP errors."""
    from pathlib import Path

    path = "pyapp/draw/scene.py"
    got = pyodide.run("""
from pyapp.browser.fetch import fetch_bytes, FetchError
import hashlib
seen = []
data = await fetch_bytes(%r, lambda done, total: seen.append([done, total]))
try:
    await fetch_bytes(%r)
    err = ""
except FetchError as e:
    err = str(e)
[hashlib.sha256(data).hexdigest(), len(data), seen, err]
""" % (server.url("/" + path), server.url("/no/such/file.json")))
    import hashlib

    want = (Path(__file__).resolve().parents[2] / path).read_bytes()
    digest, n, seen, err = got
    assert digest == hashlib.sha256(want).hexdigest() and n == len(want)
    assert seen and seen[-1][0] == len(want) and seen[-1][1] == len(want)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    assert err.startswith("HTTP 404")
