"""Page entry point: everything lives in the pyapp package."""

from __future__ import annotations

import asyncio

from pyapp.browser.app import main

asyncio.ensure_future(main())
