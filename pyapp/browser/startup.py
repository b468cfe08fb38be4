"""The page's start (web/main.py): the shell's modules imported one at a time, the browser's turn in between.

Importing them takes Pyodide 0.17 about 0.65 s of the main thread, 0.48 s of it numpy's own import (the first
module that needs it: one piece that cannot be split), the rest a few ms a module. In one piece that was one long
task: the page could not paint, and the compute worker, whose model files this thread fetches for it
(web/coi.js), waited for them; the worker's first heatmap then came after the page's instead of before it.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Sequence

from .shell_modules import MODULES


async def import_gently(modules: Sequence[str] = MODULES) -> None:
    """Import ``modules`` in order (each after those it imports), yielding to the event loop after each."""
    for name in modules:
        importlib.import_module(name)
        await asyncio.sleep(0)


async def start() -> None:
    await import_gently()
    from .app import main

    await main()
