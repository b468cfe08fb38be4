"""The thin browser shell: DOM, events, canvas and fetch. The only package that imports ``js``/``pyodide``."""

from __future__ import annotations
