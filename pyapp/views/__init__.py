"""View logic: what to draw, as pure Python + numpy.

Each tab is one module with ``render(ctx: ViewContext, width: float) -> Scene`` (overview, steps, heads,
mathematics, architecture, ...). ``scene.py`` is the drawing contract shared with the two backends
(pyapp/browser/canvas.py and pyapp/raster.py); ``interact.py`` turns hits into tooltips and state changes.
"""
