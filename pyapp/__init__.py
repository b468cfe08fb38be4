"""MHSA Visualizer: multi-head self-attention of a real pretrained Transformer, step by step.

Layers (imports point down only): ``browser`` -> ``views`` -> ``core``.  ``cli`` is the command line.
"""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):  # ``pyapp.figure`` (CPython, see figures.py) without importing it in the browser
    if name == "figure":
        from .figures import figure
        return figure
    raise AttributeError("module 'pyapp' has no attribute %r" % name)
