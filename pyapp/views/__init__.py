"""The tab views: one module per tab, named by its tab id, each with
``render(ctx: ViewContext, width: float) -> Scene``. The tab registry (``pyapp.app.tabs``) lists them."""
