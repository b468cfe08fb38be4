"""Page entry point: everything lives in the pyapp package (its modules imported a few at a time)."""

from __future__ import annotations

import asyncio

from pyapp.browser.startup import start

asyncio.ensure_future(start())
