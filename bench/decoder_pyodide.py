"""SmolLM2-135M in Pyodide 0.17.1 (numpy 1.17.5, the page's WebAssembly SIMD GEMM): the time of an edit.

    .venv/bin/python bench/decoder_pyodide.py [--repeat 3] [--cpython]
    .venv/bin/python bench/decoder_pyodide.py --memory [--cpython] [--root CHECKOUT]
    .venv/bin/python bench/decoder_pyodide.py --edits [--cpython] [--root CHECKOUT]

``--memory``: the every-layer tabs (Model, Rollout, Head stats) of the app's Session at 512 tokens, every layer
at once (``build_frame(..., new_layers=None)``): each frame's kind, time and error (a MemoryError in Pyodide
before the byte budgets), and the caches' bytes after.  ``--edits``: six text edits shown at layer 29 (the
Overview, as the page does them), each one's time and how many quantised matrices it dequantised (the
dequantisation cache's thrash).  ``--root``: run another checkout's ``pyapp`` (e.g. ``git archive HEAD`` in a
temporary folder, with a ``node_modules`` link) to measure before / after.

An edit = tokenize the new text + the forward the page needs + (for the shown layer) its full trace:
* layer 0: the first heatmap's work (embedding rows, RMSNorm, Q/K/V, RoPE, 9 heads of causal softmax, W_O);
* layer 29: the 29 blocks below in full (attention + SwiGLU), then layer 29's trace;
* all 30 layers' attention (the Model / Rollout / Head-stats tabs);
* next-token logits (every block + the tied LM head over the 49,152-entry word table).
Each at 12 and 128 tokens; texts differ per repeat (nothing cached), files already in the WeightStore
(quantised; the default 256 MB dequantisation cache, as on the page).  Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "smollm2-135m"
WORDS = ("the cat sat on a mat and it was very happy with all of its new toys so we went out to play in "
         "the park near our house where many kids run around every day").split()

BENCH_SRC = r'''
import json, statistics, sys, time
sys.path.insert(0, ROOT_DIR)
from pyapp.core.files import LocalModel

def run(texts_by_n, repeat, models_dir):
    m = LocalModel("smollm2-135m", models_dir)
    rows = []
    for texts in texts_by_n.values():
        for text in texts:
            m.need(m.tokenizer.encode(text).ids, next_token=True)  # every file read before timing
    for n, texts in texts_by_n.items():
        for what in ("layer 0", "layer 29", "all 30 layers' attention", "next-token logits"):
            times = []
            for r in range(repeat):
                text = texts[r % len(texts)]
                m.encoder.clear()
                t0 = time.perf_counter()
                ids = m.tokenizer.encode(text).ids
                assert len(ids) == int(n), (len(ids), n)
                if what == "layer 0":
                    m.encoder.trace(ids, 0)
                elif what == "layer 29":
                    m.encoder.trace(ids, 29)
                elif what.startswith("all"):
                    m.encoder.attentions(ids, range(30))
                else:
                    m.encoder.next_token_logits(ids)
                times.append((time.perf_counter() - t0) * 1000)
            rows.append({"n": int(n), "what": what, "ms": statistics.median(times), "min": min(times)})
    return rows


def _session(models_dir):
    from pyapp.app.session import Session
    from pyapp.core.files import load_local_catalogue
    return Session(load_local_catalogue(models_dir))


def _load(session, state, models_dir):
    from pyapp.figures import load_plan
    load_plan(session, state, models_dir)


def _cache_bytes(session):
    """Bytes held by the session's and the model's caches (getattr: the old code has fewer of them)."""
    out = {"quantised store": sum(session.store.catalogue.file(p).size for p in session.store._tensors)}
    deq = getattr(session.store, "_dequantized", {})
    out["dequantised"] = sum(a.nbytes for a in deq.values())
    from pyapp.core import numerics
    out["transposed (numpy matmul)"] = sum(v[1].nbytes for v in getattr(numerics, "_TRANSPOSED", {}).values())
    src = session._sources.get("smollm2-135m")
    enc = src.encoder if src is not None else None
    if enc is not None:
        from pyapp.core.lru import LRU
        for name in ("_traces", "_hidden"):
            c = getattr(enc, name)
            if isinstance(c, LRU) and getattr(c, "maxbytes", None) is not None:
                out[name[1:]] = c.bytes
            else:
                from pyapp.core.attention import AttentionTrace
                seen, total = set(), 0
                vals = list(c.values()) if isinstance(c, dict) else [c[k] for k in c]
                arrays = []
                for v in vals:
                    if isinstance(v, AttentionTrace):
                        arrays += [getattr(v, f) for f in ("x", "q", "k", "v", "scores", "scaled", "masked",
                                                           "logits", "probs", "head_outputs", "concat", "output",
                                                           "q_unrotated", "k_unrotated")]
                    else:
                        arrays += list(v) if isinstance(v, list) else [v]
                for a in arrays:
                    while a is not None and getattr(a, "base", None) is not None and hasattr(a.base, "nbytes"):
                        a = a.base
                    if a is not None and id(a) not in seen:
                        seen.add(id(a))
                        total += a.nbytes
                out[name[1:]] = total
    dig = getattr(session, "_digests", None)
    if dig is not None:
        out["digests"] = dig.bytes
    else:
        seen, total = set(), 0
        for key in session._attentions:
            for a in session._attentions[key].values():
                if id(a) not in seen:
                    seen.add(id(a))
                    total += a.nbytes
        out["attentions"] = total
    return {k: round(v / 2**20, 1) for k, v in out.items()}


def memory(models_dir, text, profile=False):
    """The three every-layer tabs of SmolLM2 at 512 tokens, all layers at once (``profile``: the top
    functions by own time, under cProfile)."""
    from pyapp.app.frame import build_frame
    from pyapp.app.state import AppState
    s = _session(models_dir)
    st = AppState(model="smollm2-135m", text=text)
    for tab in ("model", "rollout", "stats"):
        _load(s, st.with_(tab=tab), models_dir)
    rows = []
    prof = None
    if profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    for tab in ("model", "rollout", "stats"):
        t0 = time.perf_counter()
        try:
            fr = build_frame(s, st.with_(tab=tab), 1000, new_layers=None)
            kind, err = fr.kind, fr.status if fr.kind == "error" else ""
            n, layers = fr.report.get("n", 0), len(fr.report.get("layers_ready", []))
        except MemoryError as e:  # build_frame turns most failures into an error frame; not all
            kind, err, n, layers = "raised", "MemoryError: %s" % e, 0, 0
        rows.append({"tab": tab, "kind": kind, "n": n, "layers": layers, "error": err[:200],
                     "ms": (time.perf_counter() - t0) * 1000})
    if prof is not None:
        import io
        import pstats
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
        rows.append({"profile": buf.getvalue()[-6000:]})
    return {"rows": rows, "caches_mb": _cache_bytes(s)}


def edits(models_dir, base_text):
    """Six edits of a text shown at layer 29 (Overview): time and dequantisations per edit."""
    from pyapp.app.frame import build_frame
    from pyapp.app.state import AppState
    from pyapp.core import weights
    count = [0]
    real = weights.Blocks.dequantize

    def counted(self, *a, **k):
        count[0] += 1
        return real(self, *a, **k)

    weights.Blocks.dequantize = counted
    try:
        s = _session(models_dir)
        rows = []
        for i in range(6):
            st = AppState(model="smollm2-135m", text=base_text + "!" * i, layer=29)
            _load(s, st, models_dir)
            c0 = count[0]
            t0 = time.perf_counter()
            fr = build_frame(s, st, 900)
            rows.append({"edit": i, "kind": fr.kind, "n": fr.report.get("n", 0),
                         "ms": (time.perf_counter() - t0) * 1000, "dequantised": count[0] - c0})
        return {"rows": rows, "caches_mb": _cache_bytes(s)}
    finally:
        weights.Blocks.dequantize = real
'''


def texts(n: int, count: int):
    """``count`` different texts of exactly n SmolLM2 tokens."""
    sys.path.insert(0, ROOT)
    from pyapp.core.files import LocalModel

    tok = LocalModel(MODEL).tokenizer
    out = []
    for shift in range(count):
        words, k = [], 0
        while len(tok.encode(" ".join(words)).ids) < n:
            words.append(WORDS[(k + shift) % len(WORDS)])
            k += 1
        text = " ".join(words)
        while len(tok.encode(text).ids) > n:
            text = text[:-1]
        assert len(tok.encode(text).ids) == n
        out.append(text)
    return out


def files_needed(texts_by_n):
    """Repo-relative paths: the pyapp package, index.json, and every model file these texts need."""
    sys.path.insert(0, ROOT)
    from pyapp.core.files import LocalModel

    m = LocalModel(MODEL)
    paths = {"models/index.json", "models/" + m.entry.tokenizer_file().path}
    for ts in texts_by_n.values():
        for t in ts:
            paths.update("models/" + f.path for f in m.entry.files_for(m.tokenizer.encode(t).ids, next_token=True))
    for d, _, names in os.walk(os.path.join(ROOT, "pyapp")):
        paths.update(os.path.relpath(os.path.join(d, n), ROOT).replace(os.sep, "/") for n in names
                     if n.endswith(".py"))
    return sorted(paths)


LOAD_JS = r'''async ([paths, root]) => {
  const FS = window.pyodide.FS || window.pyodide._module.FS;  // 0.17: only on _module
  const made = new Set();
  const mkdirs = (p) => { const parts = p.split("/"); let cur = "";
    for (const x of parts.slice(0, -1)) { cur += "/" + x; if (!made.has(cur)) { try { FS.mkdir(cur); } catch (e) {} made.add(cur); } } };
  let bytes = 0, i = 0;
  const worker = async () => { while (i < paths.length) { const p = paths[i++];
      const r = await fetch("/" + p); if (!r.ok) throw new Error(p + " " + r.status);
      const b = new Uint8Array(await r.arrayBuffer()); bytes += b.length;
      mkdirs(root + "/" + p); FS.writeFile(root + "/" + p, b); } };
  await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(worker));
  return bytes;
}'''


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpython", action="store_true", help="run in this CPython instead (for contrast)")
    ap.add_argument("--memory", action="store_true", help="the every-layer tabs at 512 tokens (see above)")
    ap.add_argument("--edits", action="store_true", help="deep-layer edits and their dequantisations")
    ap.add_argument("--root", default=ROOT, help="the checkout whose pyapp runs (default: this one)")
    ap.add_argument("--profile", action="store_true", help="--memory: print the top functions (cProfile)")
    a = ap.parse_args(argv)
    if a.memory or a.edits:
        return special(a)
    by_n = {12: texts(12, a.repeat), 128: texts(128, a.repeat)}
    if a.cpython:
        ns = {"ROOT_DIR": ROOT}
        exec(compile(BENCH_SRC, "decoder_bench", "exec"), ns)
        rows = ns["run"](by_n, a.repeat, os.path.join(ROOT, "models"))
        title = "CPython %s" % sys.version.split()[0]
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from browser import chromium, open_pyodide
        from server import BenchServer

        paths = files_needed(by_n)
        with BenchServer() as srv, chromium() as browser:
            page = open_pyodide(browser, srv)
            t0 = time.time()
            n_bytes = page.evaluate(LOAD_JS, [paths, "/repo"])
            print("loaded %d files, %.1f MB into Pyodide's file system in %.1f s" % (
                len(paths), n_bytes / 1e6, time.time() - t0))
            gemm = page.evaluate("window.py(%s)" % json.dumps(
                "import sys\nsys.path.insert(0, '/repo')\nfrom pyapp.browser import wasm_gemm\n"
                "str(wasm_gemm.install() is not None)"))
            page.evaluate("window.py(%s)" % json.dumps("ROOT_DIR = '/repo'\n" + BENCH_SRC + "\n'ok'"))
            rows = json.loads(page.evaluate("window.py(%s)" % json.dumps(
                "json.dumps(run(%s, %d, '/repo/models'))" % (json.dumps({str(k): v for k, v in by_n.items()}),
                                                             a.repeat))))
            title = "Pyodide 0.17.1 + numpy 1.17.5, Chromium %s, WebAssembly SIMD GEMM %s" % (
                browser.version, "on" if gemm == "True" else "OFF")
    print(title)
    print("SmolLM2-135M-Instruct (30 layers, 9 query / 3 K-V heads, d_model 576), median of %d edits" % a.repeat)
    print("  %-6s %-28s %10s %10s" % ("tokens", "work", "median ms", "min ms"))
    for r in rows:
        print("  %-6d %-28s %10.0f %10.0f" % (r["n"], r["what"], r["ms"], r["min"]))
    return 0


LONG_TEXT = " ".join("sentence %d: the cat sat on the mat, and it was happy." % i for i in range(120))
EDIT_TEXT = "The cat sat on the mat because it was"


def special(a) -> int:
    """``--memory`` / ``--edits``, in this CPython or in Pyodide 0.17.1 (with the page's GEMM kernel)."""
    root = os.path.abspath(a.root)
    call = ("memory(%r, %r, %r)" % ("MODELS", LONG_TEXT, a.profile)) if a.memory else (
        "edits(%r, %r)" % ("MODELS", EDIT_TEXT))
    if a.cpython:
        ns = {"ROOT_DIR": root}
        exec(compile(BENCH_SRC, "decoder_bench", "exec"), ns)
        out = eval(call.replace("'MODELS'", repr(os.path.join(ROOT, "models"))), ns)
        title = "CPython %s, pyapp from %s" % (sys.version.split()[0], root)
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from pathlib import Path

        from browser import chromium, open_pyodide
        from server import BenchServer

        paths = ["models/index.json"]
        for d, _, names in os.walk(os.path.join(ROOT, "models", "smollm2-135m")):
            paths += sorted(os.path.relpath(os.path.join(d, n), ROOT).replace(os.sep, "/") for n in names)
        for d, _, names in os.walk(os.path.join(root, "pyapp")):
            paths += [os.path.relpath(os.path.join(d, n), root).replace(os.sep, "/") for n in names
                      if n.endswith(".py")]
        with BenchServer(Path(root)) as srv, chromium() as browser:
            page = open_pyodide(browser, srv)
            page.evaluate(LOAD_JS, [paths, "/repo"])
            gemm = page.evaluate("window.py(%s)" % json.dumps(
                "import sys\nsys.path.insert(0, '/repo')\nfrom pyapp.browser import wasm_gemm\n"
                "str(wasm_gemm.install() is not None)"))
            page.evaluate("window.py(%s)" % json.dumps("ROOT_DIR = '/repo'\n" + BENCH_SRC + "\n'ok'"))
            code = "import json\njson.dumps(%s)" % call.replace("'MODELS'", "'/repo/models'")
            out = json.loads(page.evaluate("window.py(%s)" % json.dumps(code)))
            title = "Pyodide 0.17.1, Chromium %s, GEMM kernel %s, pyapp from %s" % (
                browser.version, "on" if gemm == "True" else "OFF", root)
    print(title)
    for r in out["rows"]:
        if "profile" in r:
            print(r["profile"])
            continue
        print("  " + "  ".join("%s=%s" % (k, ("%.0f" % v) if isinstance(v, float) else v) for k, v in r.items()))
    print("  caches after (MB): %s" % out["caches_mb"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
