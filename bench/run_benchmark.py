"""Issue 7: our NumPy-in-Pyodide compute path against transformers.js, same model, same Chromium, same run.

    .venv/bin/python bench/run_benchmark.py                 # full run: warm-up 3, median of 20
    .venv/bin/python bench/run_benchmark.py --readme        # ... and write the table into bench/README.md
    .venv/bin/python bench/run_benchmark.py --base bc1ab4e  # ... with rows of an older pyapp, same run
    .venv/bin/python bench/run_benchmark.py --reps 5 --quick  # a short smoke run (fewer reps, no 2-thread peer)

Set-up (idempotent): installs bench/requirements.txt (onnx, onnxruntime) into this Python when missing,
exports MiniLM to ONNX (bench/export_onnx.py -> bench/.generated/minilm-onnx/, checked against HF) and runs
``npm ci --ignore-scripts`` in bench/ when the peer is missing.  Then one Chromium (Debian's), one local
server (repo root on 127.0.0.1, COOP/COEP so onnxruntime-web may use threads), and for each side a fresh
browser context (cold HTTP cache, every byte counted by the server):

  peer   bench/peer.html: transformers.js 4.3.2 + onnxruntime-web (wasm, fp32), 1 thread and 2 threads
  ours   bench/pyodide.html: Pyodide 0.17.1 + numpy 1.17.5 running the repo's pyapp (catalogue, WeightStore,
         WordPieceTokenizer, Encoder) exactly as the app does; with ``--base REV`` also that revision's
         pyapp on the same weights (the measured effect of a change, same run)
  app    web/index.html booted the way the browser tests boot it (tests/browser/conftest.py routing: the
         PyScript CDN module replaced by tests/browser/bootstrap.js = Pyodide 0.17.1 from node_modules)

Figures: (a) one edit showing layer 0 at 12 and 128 tokens; (b) one edit computing all six layers;
(c) page open -> first heatmap on the canvas; (d) bytes fetched before it (all, and model data only);
the redraw of a 128 x 128 heatmap; the temperature change.  Attentions of both sides are checked against
HF transformers (eager) on the same texts.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from browser import chromium, guard, open_pyodide  # noqa: E402
from server import BenchServer  # noqa: E402

TEXT_12 = "The quick brown fox jumps over the lazy dog."
PASSAGE = (
    "Self-attention lets every token in a sentence look at every other token and decide how much each one "
    "matters for its own meaning. A transformer layer computes queries, keys and values from the same input, "
    "compares each query with every key through a dot product, scales the result by the square root of the "
    "key size, and turns each row of scores into probabilities with a softmax. Those probabilities weight the "
    "values, and the weighted sums from all heads are joined and projected back to the model width. Because "
    "each head has its own projections, different heads learn different habits: some look at the previous "
    "word, some at the end of the sentence, some at words that share a meaning. Stacking six such layers, "
    "each followed by a small feed-forward network and layer normalisation, gives a compact sentence encoder "
    "that runs comfortably in a web browser, where a student can type a sentence and watch the heads at work "
    "while the numbers change with every keystroke and every choice of layer, head and temperature."
)
MODEL_DIR = HERE / ".generated" / "minilm-onnx"


# ------------------------------------------------------------------------------------------------ set-up
def setup(log) -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        log("pip install -r bench/requirements.txt (onnx for the export, onnxruntime for its check) ...")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(HERE / "requirements.txt")],
                       check=True)
    if not (MODEL_DIR / "onnx" / "model.onnx").exists():
        log("exporting MiniLM to ONNX (bench/export_onnx.py) ...")
        subprocess.run([sys.executable, str(HERE / "export_onnx.py")], check=True)
    if not (HERE / "node_modules" / "@huggingface" / "transformers" / "dist" / "transformers.min.js").exists():
        log("npm ci --ignore-scripts in bench/ ...")
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=str(HERE), check=True)
    for need in ("models/index.json", "pyapp/core/encoder.py", "pyapp/core/store.py"):
        if not (ROOT / need).exists():
            sys.exit("missing %s: our side needs the app's package and built models" % need)


def hf_tokenizer():
    from export_onnx import checkpoint_dir
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(checkpoint_dir() / "tokenizer.json"))
    tok.no_padding()          # MiniLM's tokenizer.json pads/truncates to 128: count real tokens
    tok.no_truncation()
    return tok


def text_of_tokens(n: int) -> str:
    """The first run of whole words of PASSAGE that HF tokenizes to exactly n tokens with [CLS]/[SEP]."""
    tok = hf_tokenizer()
    words = PASSAGE.split(" ")
    for start in range(len(words)):
        for k in range(start + 1, len(words) + 1):
            text = " ".join(words[start:k])
            m = len(tok.encode(text).ids)
            if m == n:
                return text
            if m > n:
                break
    raise SystemExit("no run of words of the passage has exactly %d tokens" % n)


def hf_reference(texts):
    """HF transformers eager attentions: [text] -> (layers, heads, n, n) float32."""
    from export_onnx import checkpoint_dir, reference
    return [np.stack(layers) for _, layers in reference(checkpoint_dir(), texts)]


def unpack(b64: str, n: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4").reshape(6, -1, n, n)


# ------------------------------------------------------------------------------------------------ peer
def run_peer(browser, srv, texts, threads, warmup, reps, log):
    ctx = browser.new_context()
    page = ctx.new_page()
    errors = []
    guard(page, srv.origin, errors)
    page.add_init_script("window.BENCH = %s;" % json.dumps(
        {"texts": texts, "threads": threads, "reps": reps, "warmup": warmup, "settleMs": 5000}))
    srv.reset()
    page.goto(srv.origin + "/bench/peer.html")
    page.wait_for_function("window.PEER_READY === true || document.getElementById('status').textContent"
                           ".startsWith('error')", timeout=300000)
    if errors:
        log("peer page errors: %s" % errors)
    first = page.evaluate("window.FIRST")
    fetched = srv.fetched()
    result = {"first_ms": first["ms"], "isolated": first["crossOriginIsolated"], "threads": first["threads"],
              "marks": first["marks"],
              "bytes": sum(n for _, n in fetched),
              "model_bytes": sum(n for p, n in fetched if "/.generated/" in p),
              "rows": page.evaluate("runBench()"), "errors": errors}
    ctx.close()
    return result


# ------------------------------------------------------------------------------------------------ ours
def pyapp_files():
    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pyapp").rglob("*.py")
                   if "__pycache__" not in p.parts)
    return files


def run_ours(browser, srv, texts, warmup, reps, base, log):
    """Ours: the compute figures in a dedicated worker (as the app computes), with the kernel's second thread
    when the worker is cross-origin isolated (one thread and two, alternately); the redraw on the page."""
    from ours import SETUP
    page = open_pyodide(browser, srv)
    boot_ms = page.evaluate("window.BOOT_MS")
    files = [[srv.origin + "/" + f, f] for f in pyapp_files()]
    if base:
        from profile_forward import BASE_DIR, write_base
        write_base(base)
        files += [[srv.origin + "/bench/.generated/base/" + p.relative_to(BASE_DIR).as_posix(),
                   p.relative_to(BASE_DIR).as_posix()] for p in sorted(BASE_DIR.rglob("*.py"))]
    prelude = "FILES = %s\nBASE = %r\n" % (json.dumps(files), srv.origin + "/")
    page.evaluate("window.py(%s)" % json.dumps(prelude + SETUP + "\n'ok'"))       # main thread: the redraw
    worker = page.evaluate("window.startWorker()")
    log("ours: worker booted in %.0f ms, crossOriginIsolated=%s" % (worker["boot_ms"], worker["isolated"]))

    def pyw(code):
        return page.evaluate("window.pyw(%s)" % json.dumps(code))

    pyw("THREADS = True\n" + prelude + SETUP + "\n'ok'")
    if base:
        pyw("add_base()")
    loaded = json.loads(pyw("await load_for(%s)" % json.dumps(texts)))
    log("ours: loaded %d model files (%.1f MB), decode+verify %.2f s"
        % (loaded["files"], loaded["bytes"] / 1e6, loaded["decode_s"]))
    threads = json.loads(pyw("json.dumps(threads_status())"))
    log("ours: worker kernel threads: %s" % json.dumps(threads))
    rows = json.loads(pyw("run(%s, %d, %d, %s, 5.0)" % (json.dumps(texts), warmup, reps, bool(base))))
    pairs = json.loads(pyw("run_threads(%s, %d, %d, 2.0)" % (json.dumps(texts), warmup, reps)))
    for r, pr in zip(rows, pairs["rows"]):
        r["threads"] = pr
    redraw = json.loads(page.evaluate("window.py(%s)" % json.dumps("redraw(128, 512, %d, %d)" % (warmup, reps))))
    matmul = pyw("MATMUL")
    page.context.close()
    return {"rows": rows, "redraw_128": redraw, "errors": page.bench_log, "boot_ms": boot_ms, "loaded": loaded,
            "matmul": matmul, "worker": worker, "threads": pairs["status"]}


# ------------------------------------------------------------------------------------------------ the app
_FIRST_READY = """
window.__bench = {};
window.__timeline = [];
addEventListener("py:progress", (e) => window.__timeline.push([performance.now(), String(e.detail)]));
new MutationObserver(() => {
  const s = document.body && document.body.dataset.state;
  if (s && !window.__bench[s]) window.__bench[s] = performance.now();
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-state"]});
// the compute worker's first view frame drawn into the page's canvas (its message has the canvas' CSS size):
// the heatmap is on screen from then on, while the page's own Python may still be booting
{ const W = window.Worker;
  window.Worker = class extends W { constructor(url, opts) { super(url, opts);
    if (String(url).indexOf("compute-worker") < 0) return;
    this.addEventListener("message", (e) => {
      const m = e.data || {};
      if (window.__bench.drawn || !m.size || (m.type !== "result" && m.type !== "partial")) return;
      if (String(m.json || "").indexOf('"kind":"view"') >= 0) window.__bench.drawn = performance.now();
    }); } }; }
"""


NOUNS = ("dog cat cow hen pig owl bee ant rat elk yak ram bat eel cod ape man boy kid car bus van cab jet "
         "ship boat bird fish frog lion bear wolf deer goat duck").split()

_EDIT = """async ([id, value, event]) => {
  const report = () => JSON.parse(document.body.dataset.report || '{}');
  const before = report().draws;
  const el = document.getElementById(id);
  const t0 = performance.now();
  el.value = value;
  el.dispatchEvent(new Event(event, {bubbles: true}));
  await new Promise((ok) => {
    const poll = () => (report().draws > before && document.getElementById('loading').hidden) ? ok() : setTimeout(poll, 2);
    poll();
  });
  return Object.assign({wall_ms: performance.now() - t0}, report().timing, {n: report().n});
}"""


def edit_variants(text: str, count: int):
    """`count` versions of `text` with its last word replaced by a different one-token noun, same length."""
    tok = hf_tokenizer()
    n = len(tok.encode(text).ids)
    head, last = text.rsplit(" ", 1)
    tail = "." if last.endswith(".") else ""
    out = []
    for w in NOUNS:
        t = "%s %s%s" % (head, w, tail)
        if len(tok.encode(t).ids) == n and t != text:
            out.append(t)
    if len(out) < count:
        raise SystemExit("only %d one-token variants of the %d-token text" % (len(out), n))
    return out[:count]


def swap_variants(text: str, count: int):
    """`count` distinct reorderings of `text` (two neighbouring words swapped): same tokens, so no new word
    chunk has to be fetched, but a new sentence (nothing cached)."""
    tok = hf_tokenizer()
    n = len(tok.encode(text).ids)
    words, out = text.split(" "), []
    for i in range(len(words) - 1):
        for j in range(i + 1, len(words)):
            w = list(words)
            w[i], w[j] = w[j], w[i]
            t = " ".join(w)
            if t != text and t not in out and len(tok.encode(t).ids) == n:
                out.append(t)
            if len(out) == count:
                return out
    raise SystemExit("only %d reorderings of the %d-token text" % (len(out), n))


def app_edits(page, texts, warmup, reps):
    """In the real app: type each text (its files get fetched), then `reps` one-word edits of it, each a
    new sentence (nothing cached), and `reps` temperature changes.  Timings are the app's own report."""
    def med(xs):
        return float(np.median(xs))
    out = []
    for text in texts:
        variants = edit_variants(text, warmup + reps)
        page.evaluate(_EDIT, ["text", text, "input"])
        swaps = [page.evaluate(_EDIT, ["text", v, "input"]) for v in swap_variants(text, warmup + reps)][warmup:]
        edits = [page.evaluate(_EDIT, ["text", v, "input"]) for v in variants][warmup:]
        temps = [page.evaluate(_EDIT, ["temperature", "%.2f" % v, "input"])
                 for v in np.linspace(-0.6, 0.6, warmup + reps)][warmup:]
        out.append({"n": edits[0]["n"],
                    "swap_update_ms": med([e["update_ms"] for e in swaps]),
                    "swap_wall_ms": med([e["wall_ms"] for e in swaps]),
                    "swap_context_ms": med([e["context_ms"] for e in swaps]),
                    "swap_view_ms": med([e["view_ms"] for e in swaps]),
                    "swap_draw_ms": med([e["draw_ms"] for e in swaps]),
                    "edit_update_ms": med([e["update_ms"] for e in edits]),
                    "edit_wall_ms": med([e["wall_ms"] for e in edits]),
                    "edit_context_ms": med([e["context_ms"] for e in edits]),
                    "edit_view_ms": med([e["view_ms"] for e in edits]),
                    "edit_draw_ms": med([e["draw_ms"] for e in edits]),
                    "temp_update_ms": med([e["update_ms"] for e in temps]),
                    "temp_wall_ms": med([e["wall_ms"] for e in temps]),
                    "temp_context_ms": med([e["context_ms"] for e in temps]),
                    "temp_view_ms": med([e["view_ms"] for e in temps]),
                    "temp_draw_ms": med([e["draw_ms"] for e in temps])})
    return out


def run_app(browser, srv, log, texts=None, warmup=3, reps=20):
    """(c)/(d) of the real app, booted through the browser tests' routing (bootstrap.js = Pyodide 0.17.1)."""
    conftest = ROOT / "tests" / "browser" / "conftest.py"
    if not (conftest.exists() and (ROOT / "tests" / "browser" / "bootstrap.js").exists()
            and (ROOT / "web" / "index.html").exists()):
        return {"error": "tests/browser/conftest.py, bootstrap.js or web/index.html missing"}
    import importlib.util
    sys.path.insert(0, str(conftest.parent))           # its own imports (helpers.py) live next to it
    try:
        spec = importlib.util.spec_from_file_location("_browser_conftest", str(conftest))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    except Exception as e:  # noqa: BLE001 - the shell engineer's harness changed shape: say so
        return {"error": "cannot reuse tests/browser/conftest.py routing (%s: %s)" % (type(e).__name__, e)}
    finally:
        sys.path.remove(str(conftest.parent))
    # the harness runtime's compiled standard library, as the test session makes it (tests/browser/pycache.py)
    log("ours: the harness runtime's pyc bundle: %s" % json.dumps(mod.pycache.build(browser, srv.origin)))
    g = mod.Guard()
    # as the harness's new_page("pyodide") does: Pyodide 0.17's JS bridge evaluates strings, which the
    # page's CSP (no 'unsafe-eval', right for the modern Pyodide the site ships with) forbids
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    ctx.add_init_script(mod._STRIP_SRI)
    ctx.add_init_script(_FIRST_READY)
    ctx.route("**/*", mod._router(srv, "pyodide", g))
    page = ctx.new_page()
    page.on("pageerror", lambda e: g.page_errors.append(str(e)))
    srv.reset()
    page.goto(srv.origin + "/web/index.html")
    try:
        mod.wait_ready(page, g)           # polls with page.evaluate: the app's CSP forbids eval()
    except Exception as e:  # noqa: BLE001
        ctx.close()
        return {"error": "the app did not boot: %s" % e}
    fetched = srv.fetched()
    marks = page.evaluate("window.__bench")
    timeline = page.evaluate("window.__timeline")
    report = page.evaluate("JSON.parse(document.body.dataset.report || '{}')")
    state = page.evaluate("document.body.dataset.state")
    out = {"state": state, "first_ms": marks.get("ready"), "drawn_ms": marks.get("drawn"), "bytes": sum(n for _, n in fetched),
           "model_bytes": sum(n for p, n in fetched if p.startswith("/models/") and not p.endswith("index.json")),
           "catalogue_bytes": sum(n for p, n in fetched if p.endswith("/models/index.json")),
           "model_files": [p for p, _ in fetched if p.startswith("/models/")],
           "n": report.get("n"), "model": report.get("model"), "tab": report.get("tab"),
           "timing": report.get("timing"), "offhost": g.offhost, "errors": g.page_errors,
           "timeline": timeline + [[marks.get("ready"), "first heatmap drawn (data-state=ready)"]]}
    if texts and state == "ready":
        try:
            out["edits"] = app_edits(page, texts, warmup, reps)
        except Exception as e:  # noqa: BLE001 - report, keep the rest of the table
            out["edits_error"] = "%s: %s" % (type(e).__name__, e)
    ctx.close()
    return out


# ------------------------------------------------------------------------------------------------ long tasks
_LONG_TASKS = """() => { window.__long = [];
  if (!window.__obs) { window.__obs = new PerformanceObserver((l) => {
      for (const e of l.getEntries()) window.__long.push(e.duration); });
    window.__obs.observe({type: "longtask", buffered: false}); } }"""
_IDLE = """() => { const a = window.mhsaApp; if (!a) return false;
  const r = JSON.parse(document.body.dataset.report || '{}');
  return r.frame !== 'loading' && (a.idle ? a.idle() : !a.running); }"""
LONG_WORDS = ("attention lets every token look at every other token and weigh how much each one matters for its "
              "meaning while the heads learn different habits").split()


def _load_harness():
    conftest = ROOT / "tests" / "browser" / "conftest.py"
    import importlib.util
    sys.path.insert(0, str(conftest.parent))
    try:
        spec = importlib.util.spec_from_file_location("_browser_conftest_lt", str(conftest))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(conftest.parent))
    return mod


def run_longtasks(browser, srv, log, models=("minilm-l6", "smollm2-135m"), sizes=(128, 512), worker=True):
    """Issue 12: the longest main-thread task (PerformanceObserver "longtask") of the real app while each tab
    and each control is used, per model and text length; ``worker``: the page with the compute worker (its
    default, ``data-compute="auto"`` on web/coi.js's tag), else the main-thread loop
    (``window.mhsaComputeDefault = "main"``). A step's figure is the longest task from the click until the page is idle again."""
    mod = _load_harness()
    out = {"worker": worker, "rows": {}, "errors": [], "offhost": []}
    for model in models:                   # a fresh page per model (the worker's memory: SmolLM2's LM head)
        g = mod.Guard()
        ctx = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True,
                                  service_workers="block")
        ctx.add_init_script(mod._STRIP_SRI)
        # the page's default is the compute worker (data-compute="auto"); "main" forces the main-thread loop
        ctx.add_init_script("window.mhsaComputeDefault = %s;" % ("'auto'" if worker else "'main'"))
        ctx.route("**/*", mod._router(srv, "pyodide", g))
        page = ctx.new_page()
        page.goto(srv.origin + "/web/index.html" + ("?model=" + model))
        try:
            mod.wait_ready(page, g)
            _longtask_rows(mod, page, out, model, sizes, worker, log)
        except Exception as e:  # noqa: BLE001 - report what was measured
            out["errors"].append("%s: %s: %s" % (model, type(e).__name__, e))
        out["offhost"] += g.offhost
        ctx.close()
    return out


def _longtask_rows(mod, page, out, model, sizes, worker, log):
    tabs = page.evaluate("() => [...document.querySelectorAll('[role=tab]')].map(b => b.id.slice(4))")
    page.evaluate(_LONG_TASKS)

    def settle():
        page.wait_for_timeout(300)                 # past the text box's debounce
        mod.wait_js(page, _IDLE, timeout=900_000)
        page.wait_for_timeout(60)

    def step(row, name, action):
        page.evaluate("() => { window.__long = []; }")
        t0 = time.time()
        action()
        settle()
        row[name] = {"max_ms": max(page.evaluate("() => window.__long") or [0]), "s": time.time() - t0}

    for n in sizes:
        row = {}
        text = " ".join(LONG_WORDS[i % len(LONG_WORDS)] for i in range(n - 2))
        page.click("#tab-overview")
        settle()
        step(row, "typing", lambda text=text: page.fill("#text", text))
        rep = page.evaluate("() => JSON.parse(document.body.dataset.report)")
        row["_n"] = rep.get("n")
        if rep.get("frame") != "view":
            out["errors"].append("%s n=%d: %s frame: %s" % (model, n, rep.get("frame"), rep.get("error")))
        for t in tabs:
            step(row, "tab:" + t, lambda t=t: page.click("#tab-" + t))
            rep = page.evaluate("() => JSON.parse(document.body.dataset.report)")
            if rep.get("frame") != "view":
                out["errors"].append("%s n=%d %s: %s frame: %s" % (model, n, t, rep.get("frame"), rep.get("error")))
            log("long tasks %s %s n=%s %s: %.0f ms (%.1f s)" % ("worker" if worker else "main", model,
                row["_n"], t, row["tab:" + t]["max_ms"], row["tab:" + t]["s"]))
        page.click("#tab-overview")
        settle()
        last = str(page.evaluate("() => document.getElementById('layer').length") - 1)
        step(row, "layer", lambda last=last: page.select_option("#layer", last))
        step(row, "head", lambda: page.select_option("#head", "1"))
        step(row, "temperature", lambda: page.evaluate("""() => { const s = document.getElementById(
            'temperature'); s.value = String(Number(s.value) + 0.2); s.dispatchEvent(new Event('input')); }"""))
        if page.evaluate("() => !document.getElementById('causal').disabled"):
            step(row, "causal", lambda: page.click("#causal"))
            page.click("#causal")
            settle()
        page.click("#tab-steps")
        settle()
        step(row, "step", lambda: page.click("#next"))
        out["rows"]["%s/%d" % (model, n)] = row


def longtask_markdown(res) -> str:
    """One table: rows = tabs and controls, columns = model / tokens; the longest main-thread task, ms."""
    rows = res.get("rows") or {}
    if not rows:
        return "long tasks: not measured (%s)" % "; ".join(res.get("errors") or ["no rows"])
    cols = list(rows)
    names = []
    for r in rows.values():
        names += [k for k in r if not k.startswith("_") and k not in names]
    head = "| longest main-thread task, ms (%s) | %s |" % (
        "compute worker" if res.get("worker") else "main-thread loop",
        " | ".join("%s, %s tokens" % (c.split("/")[0], rows[c].get("_n", c.split("/")[1])) for c in cols))
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for name in names:
        cells = []
        for c in cols:
            v = rows[c].get(name)
            cells.append("—" if v is None else ("%.0f (%.1f s)" % (v["max_ms"], v["s"])))
        lines.append("| %s | %s |" % (name, " | ".join(cells)))
    worst = [max(v["max_ms"] for k, v in rows[c].items() if not k.startswith("_")) for c in cols]
    lines.append("| **worst** | %s |" % " | ".join("**%.0f**" % w for w in worst))
    if res.get("errors"):
        lines.append("")
        lines.append("errors: " + "; ".join(res["errors"]))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ table
def fmt_ms(x):
    return "—" if x is None else ("%.1f ms" % x if x < 1000 else "%.2f s" % (x / 1000))


def fmt_mb(b):
    return "—" if b is None else "%.2f MB" % (b / 1e6)


def ratio(a, b):
    return "—" if (a is None or b is None or not b) else "%.2fx" % (a / b)


class Table:
    """Rows of the side-by-side table, printed aligned and as Markdown (bench/README.md)."""

    HEAD = ("figure", "n", "ours", "peer 1 thread", "peer 2 threads", "ours / 1T", "ours / 2T")

    def __init__(self):
        self.rows = []

    def add(self, label, n, ours, p1=None, p2=None, f=fmt_ms):
        self.rows.append((label, "" if n is None else str(n), f(ours), f(p1) if p1 is not None else "—",
                          f(p2) if p2 is not None else "—", ratio(ours, p1), ratio(ours, p2)))

    def note(self, text):
        self.rows.append((text,))

    def text(self):
        fmt = "%-58s %5s %11s %14s %15s %10s %10s"
        out = [fmt % self.HEAD, "-" * 129]
        for r in self.rows:
            out.append(("    " + r[0]) if len(r) == 1 else fmt % r)
        return "\n".join(out)

    def markdown(self):
        out = ["| " + " | ".join(self.HEAD) + " |", "|" + "---|" * len(self.HEAD)]
        for r in self.rows:
            cells = (r[0],) + ("",) * (len(self.HEAD) - 1) if len(r) == 1 else r
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(out)


README_BEGIN = "<!-- benchmark table: begin (written by run_benchmark.py --readme) -->"
README_END = "<!-- benchmark table: end -->"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs before each figure (after a 5 s settle)")
    ap.add_argument("--quick", action="store_true", help="skip the 2-thread peer and the app page")
    ap.add_argument("--peer2", action="store_true", help="with --quick: still run the 2-thread peer")
    ap.add_argument("--base", default="", help="also time this git revision's pyapp on the same weights")
    ap.add_argument("--readme", action="store_true", help="write the table into bench/README.md")
    ap.add_argument("--json", type=Path, default=HERE / ".generated" / "benchmark.json")
    ap.add_argument("--longtask-models", default="minilm-l6,smollm2-135m",
                    help="models of the long-task part (issue 12); '' skips it")
    ap.add_argument("--longtask-tokens", default="128,512")
    ap.add_argument("--longtask-main", action="store_true",
                    help="also measure the main-thread loop's long tasks (MiniLM only; slow at 512 tokens)")
    ap.add_argument("--only-longtasks", action="store_true", help="only the long-task part")
    a = ap.parse_args(argv)
    def log(m):
        print("[bench] " + m, flush=True)
    lt_models = [m for m in a.longtask_models.split(",") if m]
    lt_sizes = [int(x) for x in a.longtask_tokens.split(",") if x]
    if a.only_longtasks:
        with BenchServer() as srv, chromium() as browser:
            lt = run_longtasks(browser, srv, log, lt_models, lt_sizes)
            ltm = run_longtasks(browser, srv, log, ["minilm-l6"], lt_sizes, worker=False) if a.longtask_main else None
        md = longtask_markdown(lt) + ("\n\n" + longtask_markdown(ltm) if ltm else "")
        print(md)
        a.json.parent.mkdir(parents=True, exist_ok=True)
        (a.json.parent / "longtasks.json").write_text(json.dumps({"worker": lt, "main": ltm}, indent=1))
        return 0
    setup(log)
    texts = [TEXT_12, text_of_tokens(128)]
    t_start = time.time()
    load0 = os.getloadavg()
    with BenchServer() as srv, chromium() as browser:
        log("Chromium %s, server %s" % (browser.version, srv.origin))
        peer1 = run_peer(browser, srv, texts, 1, a.warmup, a.reps, log)
        log("peer 1 thread done")
        ours = run_ours(browser, srv, texts, a.warmup, a.reps, a.base, log)
        log("ours done")
        peer2 = None if a.quick and not a.peer2 else run_peer(browser, srv, texts, 2, a.warmup, a.reps, log)
        if peer2:
            log("peer 2 threads done")
        app = None if a.quick else run_app(browser, srv, log, texts, a.warmup, a.reps)
        lt = run_longtasks(browser, srv, log, lt_models, lt_sizes) if lt_models and not a.quick else None
        ltm = (run_longtasks(browser, srv, log, ["minilm-l6"], lt_sizes, worker=False)
               if lt and a.longtask_main else None)
        version = browser.version
    load1 = os.getloadavg()

    # parity against HF
    refs = hf_reference(texts)
    parity = {}
    for i, ref in enumerate(refs):
        n = ref.shape[-1]
        parity[("peer 1T", n)] = float(np.abs(unpack(peer1["rows"][i]["attentions"], n) - ref).max())
        if peer2:
            parity[("peer 2T", n)] = float(np.abs(unpack(peer2["rows"][i]["attentions"], n) - ref).max())
        parity[("ours", n)] = float(np.abs(unpack(ours["rows"][i]["attentions"], n) - ref).max())
        if "base_attentions" in ours["rows"][i]:
            parity[("base", n)] = float(np.abs(unpack(ours["rows"][i]["base_attentions"], n) - ref).max())

    t = Table()
    for i, r in enumerate(ours["rows"]):
        n = r["n"]
        p1 = peer1["rows"][i]
        p2 = peer2["rows"][i] if peer2 else None
        th = r["threads"]
        for fig, key in (("(a) one edit -> layer-0 heatmap data", "layer0"), ("(b) one edit -> all 6 layers' attention", "all")):
            for k in ("1", "2"):
                t.add("%s, ours on %s thread%s" % (fig, k, "s" if k == "2" else ""), n, th[key][k]["median"],
                      p1[key]["median"], p2[key]["median"] if p2 else None)
        t.note("ours 2 threads: %d jobs ran on the second thread (%d taken back), attentions identical to 1 thread: %s"
               % (th["thread_jobs"], th["taken_back"], th["same_attentions"]))
        if "base_layer0" in r:
            t.add("(a) base %s" % a.base, n, r["base_layer0"]["median"], p1["layer0"]["median"],
                  p2["layer0"]["median"] if p2 else None)
            t.add("(b) base %s" % a.base, n, r["base_all"]["median"], p1["all"]["median"],
                  p2["all"]["median"] if p2 else None)
        t.add("temperature change (re-softmax of layer 0, head average)", n, r["temperature"]["median"])
    for e in (app or {}).get("edits", []):
        t.add("real app: edit, same words (update_ms)", e["n"], e["swap_update_ms"])
        t.note("app breakdown: context %.1f ms, view %.1f ms, canvas draw %.1f ms; input event -> frame "
               "presented %.1f ms" % (e["swap_context_ms"], e["swap_view_ms"], e["swap_draw_ms"], e["swap_wall_ms"]))
        t.add("real app: edit with a new word (update_ms)", e["n"], e["edit_update_ms"])
        t.note("app breakdown: context %.1f ms, view %.1f ms, canvas draw %.1f ms; input event -> frame "
               "presented %.1f ms" % (e["edit_context_ms"], e["edit_view_ms"], e["edit_draw_ms"], e["edit_wall_ms"]))
        t.add("real app: temperature change (update_ms)", e["n"], e["temp_update_ms"])
        t.note("app breakdown: context %.1f ms, view %.1f ms, canvas draw %.1f ms; input event -> frame "
               "presented %.1f ms" % (e["temp_context_ms"], e["temp_view_ms"], e["temp_draw_ms"], e["temp_wall_ms"]))
    if app and app.get("edits_error"):
        t.note("real-app edits not measured: " + app["edits_error"])
    if app and "error" not in app:
        t.add("(c) page open -> first heatmap (real app, `ready`: controls live)", app.get("n"), app["first_ms"],
              peer1["first_ms"], peer2["first_ms"] if peer2 else None)
        if app.get("drawn_ms"):
            t.add("(c) page open -> first heatmap drawn by the worker", app.get("n"), app["drawn_ms"],
                  peer1["first_ms"], peer2["first_ms"] if peer2 else None)
        t.add("(d) bytes before the first heatmap, all", None, app["bytes"], peer1["bytes"],
              peer2["bytes"] if peer2 else None, f=fmt_mb)
        t.add("(d) model data before the first heatmap", None, app["model_bytes"], peer1["model_bytes"],
              peer2["model_bytes"] if peer2 else None, f=fmt_mb)
    else:
        t.note("(c)/(d) real app: not measured (%s)" % ((app or {}).get("error") or "--quick"))
        t.add("(c) peer page open -> first heatmap", 12, None, peer1["first_ms"])
    t.add("Pyodide 0.17.1 + numpy boot (harness page)", None, ours["boot_ms"])
    rd = ours["redraw_128"]
    t.add("redraw 128x128 heatmap at 512 px (app: colormap + scene.nearest_upscale + putImageData)", 128,
          rd["median"])
    t.note("redraw breakdown: " + ", ".join("%s %.2f ms" % kv for kv in rd["parts"].items()))
    t.add("redraw 128x128, upscale as one uint32 per pixel (the packed path, timed alone)", 128,
          rd["uint32_upscale"]["median"])
    t.note("same pixels as scene.nearest_upscale: %s" % rd["uint32_same_pixels"])

    header = ("Chromium %s (%s), %d CPUs, load average %.1f -> %.1f; warm-up %d, median of %d; %s UTC"
              % (version, platform.machine(), os.cpu_count() or 0, load0[0], load1[0], a.warmup, a.reps,
                 time.strftime("%Y-%m-%d %H:%M", time.gmtime())))
    sides = ("peer = transformers.js 4.3.2 / onnxruntime-web wasm fp32 (all six layers always); "
             "ours = pyapp on Pyodide 0.17.1 + numpy 1.17.5 in a dedicated worker (computes only what is shown; "
             "x @ W^T: %s; 2 threads = the large products split with web/gemm-thread.js: %s)"
             % (ours.get("matmul", "?"), "worker isolated=%s, %s" % (ours["worker"]["isolated"], json.dumps(ours["threads"]))))
    par = "parity, max |attention - HF eager| over 6 layers x 12 heads: " + ", ".join(
        "%s n=%d %.1e" % (k[0], k[1], v) for k, v in sorted(parity.items()))
    extra = ["peer 1T page timeline (ms): " + "; ".join("%.0f %s" % (tm, w) for tm, w in peer1["marks"])]
    if peer2:
        extra.append("peer 2T: crossOriginIsolated=%s, threads=%s" % (peer2["isolated"], peer2["threads"]))
    if app and "error" not in app:
        extra.append("app: state=%s model=%s tab=%s n=%s; first-view model files: %s (+ catalogue %s)"
                     % (app["state"], app["model"], app["tab"], app["n"], ", ".join(
                         p.rsplit("/models/", 1)[-1] for p in app["model_files"]), fmt_mb(app["catalogue_bytes"])))
        extra.append("app boot timeline (ms since navigation): " + "; ".join(
            "%.0f %s" % (tm, what) for tm, what in app["timeline"] if tm is not None))
        if app["offhost"] or app["errors"]:
            extra.append("app: offhost %s errors %s" % (app["offhost"], app["errors"][:3]))
    for name, res in (("peer1", peer1), ("peer2", peer2), ("ours", ours)):
        if res and res.get("errors"):
            extra.append("%s errors: %s" % (name, res["errors"][:3]))
    print()
    print(header)
    print(sides)
    print()
    print(t.text())
    print()
    print(par)
    for line in extra:
        print(line)
    print("total %.0f s" % (time.time() - t_start))

    lt_md = ""
    if lt:
        lt_md = longtask_markdown(lt) + ("\n\n" + longtask_markdown(ltm) if ltm else "")
        print()
        print(lt_md)
    md = "\n".join([header + "  ", sides, "", t.markdown(), "", par + "  ", "  \n".join(extra)]
                   + (["", lt_md] if lt_md else []))
    a.json.parent.mkdir(parents=True, exist_ok=True)
    (a.json.parent / "benchmark.md").write_text(md + "\n")
    if a.readme:
        readme = HERE / "README.md"
        text = readme.read_text()
        if README_BEGIN in text and README_END in text:
            head, rest = text.split(README_BEGIN, 1)
            text = head + README_BEGIN + "\n" + md + "\n" + README_END + rest.split(README_END, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n## Latest measured table\n\n" + README_BEGIN + "\n" + md + "\n" + \
                README_END + "\n"
        readme.write_text(text)
        log("table written into %s" % readme)

    def strip(rows):
        return [{k: v for k, v in r.items() if "attentions" not in k} for r in rows]
    a.json.write_text(json.dumps({
        "peer1": dict(peer1, rows=strip(peer1["rows"])), "peer2": peer2 and dict(peer2, rows=strip(peer2["rows"])),
        "ours": dict(ours, rows=strip(ours["rows"])), "app": app, "longtasks": lt, "longtasks_main": ltm,
        "parity": {"%s/%d" % k: v for k, v in parity.items()}, "load": [load0, load1]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
