"""Fetch a URL's bytes from Python with the browser's fetch, reporting progress as the body streams in."""

from __future__ import annotations

from typing import Callable, List, Optional

from .compat import js

Progress = Optional[Callable[[int, int], None]]   # (bytes so far, total bytes or 0 if unknown)


class FetchError(Exception):
    """The request failed (network error or an HTTP error status)."""


def _to_bytes(buf) -> bytes:
    """A JS Uint8Array / ArrayBuffer proxy -> Python bytes (Pyodide 0.17 and modern)."""
    if hasattr(buf, "to_bytes"):            # modern JsBuffer
        return buf.to_bytes()
    py = buf.to_py()                        # 0.17: memoryview of a copy
    return bytes(py)


async def fetch_bytes(url: str, progress: Progress = None, expected: int = 0, signal=None) -> bytes:
    """GET ``url``; ``progress(done, total)`` is called per received chunk (total from Content-Length,
    else ``expected``). Streams through a ReadableStream reader when there is one, else reads the body whole.
    ``signal``: an AbortSignal (``AbortController().signal``) that cancels the request; it then raises
    FetchError like any interrupted download.
    """
    try:
        if signal is None:
            resp = await js.fetch(url)
        else:
            options = js.Object.new()
            options.signal = signal
            resp = await js.fetch(url, options)
    except Exception as e:  # noqa: BLE001 - a JS TypeError: network failure, blocked, offline
        raise FetchError("network error (%s)" % _js_message(e)) from None
    if not resp.ok:
        raise FetchError(("HTTP %d %s" % (int(resp.status), str(resp.statusText or ""))).rstrip())
    total = 0
    length = resp.headers.get("Content-Length")
    if length:
        try:
            total = int(str(length))
        except ValueError:
            total = 0
    total = total or int(expected)
    body = getattr(resp, "body", None)
    if progress is None or body is None or not hasattr(body, "getReader"):
        data = _to_bytes(js.Uint8Array.new(await resp.arrayBuffer()))
        if progress is not None:
            progress(len(data), total or len(data))
        return data
    reader = body.getReader()
    parts: List[bytes] = []
    done = 0
    try:
        while True:
            chunk = await reader.read()
            if chunk.done:
                break
            b = _to_bytes(chunk.value)
            parts.append(b)
            done += len(b)
            progress(done, max(total, done))
    except Exception as e:  # noqa: BLE001 - the connection dropped mid-body
        raise FetchError("download interrupted (%s)" % _js_message(e)) from None
    return b"".join(parts)


def _js_message(e) -> str:
    msg = str(e)
    return msg.splitlines()[-1] if msg else type(e).__name__
