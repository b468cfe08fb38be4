"""SmolLM2-135M in Pyodide 0.17.1 (numpy 1.17.5, the page's WebAssembly SIMD GEMM): the time of an edit.

    .venv/bin/python bench/decoder_pyodide.py [--repeat 3] [--cpython]

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
    a = ap.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
