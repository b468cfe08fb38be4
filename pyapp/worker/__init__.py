"""The compute worker: the model, the views and the drawing off the page's main thread (issue 12).

``wire``   plain data with numpy arrays <-> (JSON text, [arrays]) for ``postMessage``; pure Python.
``engine`` what one request computes (a Session, the view's scene, progress, partial results, superseding);
           pure Python + numpy, runs and is tested in CPython.
``entry``  the worker's shell (``web/compute-worker.js`` imports it): messages, fetch, the wasm kernel, an
           OffscreenCanvas. The page's side is ``pyapp.browser.worker_client``.
"""
