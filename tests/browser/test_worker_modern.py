"""The compute worker script with the modern Pyodide PyScript 0.7.31 uses (npm ``pyodide``, 314.x).

Offline, npm ``pyodide`` is the core only: numpy's wheel lives on the Pyodide CDN, so pyapp cannot run on it
here (the Pyodide 0.17.1 tests run the whole worker). What can be checked: web/compute-worker.js loads that
runtime the same way (``importScripts`` of its UMD ``pyodide.js`` in a classic worker), writes the files of
web/pyscript.toml through its file-system API, and reports the missing numpy as a boot error the page can
show, instead of hanging. Modern Pyodide refuses classic workers, so it runs as a module worker (the same
script: ``import()`` of pyodide.mjs where ``importScripts`` throws).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

BOOT = """async ([worker, indexURL, config, type]) => {
    const w = new Worker(worker, {type});
    const stages = [];
    const end = await new Promise((done) => {
        setTimeout(() => done({type: "timeout"}), 120000);
        w.onerror = (e) => done({type: "onerror", message: e.message});
        w.onmessage = (e) => {
            if (e.data.type === "boot-progress") stages.push(e.data.stage);
            else done(e.data);
        };
        w.postMessage({type: "boot", indexURL, config});
    });
    w.terminate();
    return {stages, end};
}"""


def _boot(new_page, server, index: str, type_: str):
    page, guard = new_page("pyodide")
    blank = server.url("/web/__modern__.html")
    page.route(blank, lambda r: r.fulfill(status=200, content_type="text/html", body="<!doctype html><title>m</title>"))
    page.goto(blank)
    out = page.evaluate(BOOT, [server.url("/web/compute-worker.js"), server.url(index),
                               server.url("/web/pyscript.toml"), type_])
    guard.check()
    return out


def test_modern_pyodide_boots_in_a_module_worker_and_reports_missing_numpy(new_page, server):
    out = _boot(new_page, server, "/node_modules/pyodide/", "module")
    print("\nmodern Pyodide in the worker: %s" % out)
    assert out["stages"][:4] == ["Loading Pyodide", "Loading interpreter", "Loaded interpreter", "Loading files"]
    assert "Loaded files" in out["stages"]                    # pyodide.FS of the modern runtime took the files
    assert out["end"]["type"] == "boot-error" and "numpy" in out["end"]["message"].lower(), out


def test_modern_pyodide_refuses_a_classic_worker(new_page, server):
    """Why the client starts a module worker for it (worker_client.worker_type)."""
    out = _boot(new_page, server, "/node_modules/pyodide/", "classic")
    assert out["end"]["type"] == "boot-error" and "classic" in out["end"]["message"].lower(), out
