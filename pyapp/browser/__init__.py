"""The browser shell: fetches files and presents Frames (``pyapp.app.frame``). app (the update loop), controls,
stage (canvas, pointer, keys, hotspots), chips, loader (downloads, timeouts, the loading bar), export, dom
(helpers, one debouncer), canvas, fetch, compat. The only package that imports ``js``/``pyodide``."""

from __future__ import annotations
