"""Python that run_benchmark.py runs INSIDE Pyodide 0.17.1 (bench/pyodide.html): our side of the table.

The compute figures run in a dedicated worker (bench/pyodide_worker.js, started by the page), where the app
computes (web/compute-worker.js): SETUP with ``THREADS = True`` installs the kernel as pyapp/worker/entry.py does,
on a shared memory with its helper thread (web/gemm-thread.js) when the worker is cross-origin isolated (the
benchmark server sends COOP/COEP); ``run_threads`` times (a) and (b) with one thread and with two, alternately.
The redraw runs on the page's main thread (it draws on a <canvas>).

Not imported by CPython: run_benchmark.py sends SETUP, then calls the functions defined here through
``window.py(...)``.  Everything goes through the app's real package: ``pyapp.browser.fetch.fetch_bytes``,
``pyapp.core`` catalogue -> WeightStore -> WordPieceTokenizer -> Encoder (the app's compute path), and
``pyapp.draw.heatmap.heatmap_image`` + ``pyapp.browser.canvas._image`` for the redraw.

``base_*`` (``run_benchmark.py --base REV``) run another revision's ``pyapp`` (loaded beside the working
tree's as ``pyapp_base``) on the same store tensors: the measured effect of a change, in the same run.
"""

SETUP = r'''
import base64, json, math, os, sys, time
import numpy as np
from js import fetch

async def _install(files):
    for url, dest in files:
        resp = await fetch(url)
        text = await resp.text()
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        with open(dest, "w", encoding="utf-8") as fh:
            fh.write(text)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())

await _install(FILES)

from pyapp.browser.fetch import fetch_bytes
from pyapp.core.catalogue import load_catalogue
from pyapp.core.store import WeightStore
from pyapp.core.tokenizer import WordPieceTokenizer
from pyapp.core.sources import make_source
from pyapp.core import encoder as core_encoder
from pyapp.core import attention as core_attention
from pyapp.browser import wasm_gemm

# as the app does at start-up: numpy if no wasm SIMD. THREADS (set by run_benchmark.py in the worker, as
# pyapp/worker/entry.py): the kernel on a shared memory + its helper thread web/gemm-thread.js when isolated
THREADS = bool(globals().get("THREADS", False))
if THREADS:
    from pyapp.browser import gemm_threads
    gemm_threads.SCRIPT = BASE + "web/gemm-thread.js"
GEMM = wasm_gemm.install(threads=THREADS)
if THREADS and GEMM is not None and GEMM.threads is not None:
    await GEMM.threads.wait_ready(20.0)
MATMUL = "wasm SIMD kernel, also Q K^T and probs @ V" if GEMM is not None else "numpy einsum (%s)" % (wasm_gemm.problem or "not installed")

MODEL = "minilm-l6"
CAT = load_catalogue(await fetch_bytes(BASE + "models/index.json"))
STORE = WeightStore(CAT)
ENTRY = CAT.get(MODEL)
LOADED = {"bytes": 0, "files": 0, "decode_s": 0.0}

async def need(files):
    for f in files:
        data = await fetch_bytes(BASE + "models/" + f.path)
        t0 = time.perf_counter()
        STORE.add(f.path, data)
        LOADED["decode_s"] += time.perf_counter() - t0
        LOADED["bytes"] += len(data)
        LOADED["files"] += 1

await need(STORE.missing(MODEL, tokenizer=True))
TOK = WordPieceTokenizer.from_json(STORE.data(ENTRY.tokenizer_file().path))
SOURCE = make_source(ENTRY, TOK, STORE)
ENC = SOURCE.encoder
N_LAYERS = ENC.config.n_layers

async def load_for(texts):
    for text in texts:
        ids = TOK.encode(text).ids
        await need(STORE.missing(MODEL, ids, layer=N_LAYERS - 1, parts=("qk", "vo", "ffn")))
    return json.dumps(LOADED)


def median(xs):
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


def time_it(fn, text, warmup, reps):
    for _ in range(warmup):
        fn(text)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(text)
        ts.append((time.perf_counter() - t0) * 1e3)
    return {"median": median(ts), "min": min(ts), "max": max(ts)}


# ---- the app's compute path (pyapp.core as it is) ------------------------------------------------------
def edit_layer0(text):
    """(a) one edit showing layer 0: tokenize, Q/K of layer 0, softmax, head average for the overview."""
    ids = TOK.encode(text).ids
    ENC.clear()                                   # a new sentence: nothing cached
    probs = ENC.attentions(ids, [0])[0]           # (heads, n, n)
    return probs.mean(axis=0)                     # (n, n)


def edit_all(text):
    """(b) one edit computing all six layers' attention probabilities."""
    ids = TOK.encode(text).ids
    ENC.clear()
    return ENC.attentions(ids, range(N_LAYERS))   # {layer: (heads, n, n)}


def temperature_change(text, t=1.7):
    """Temperature / head change: a cached layer re-softmaxed at a new temperature (no matmuls)."""
    ids = TOK.encode(text).ids
    trace = ENC.trace(ids, 0, 1.0, values=False)
    return core_attention.trace_softmax(trace, t)[1].mean(axis=0)


# ---- another revision of pyapp (``--base REV``), run on the same store tensors ----------------------------
ENCODERS = {"pyapp": ENC}


def add_base(pkg="pyapp_base"):
    import importlib
    ENCODERS["base"] = importlib.import_module(pkg + ".core.encoder").Encoder(ENC.config, ENC.params)
    return "ok"


def base_layer0(text):
    ids = TOK.encode(text).ids
    e = ENCODERS["base"]
    e.clear()
    return e.attentions(ids, [0])[0].mean(axis=0)


def base_all(text):
    ids = TOK.encode(text).ids
    e = ENCODERS["base"]
    e.clear()
    return e.attentions(ids, range(N_LAYERS))


def pack(att):
    """{layer: (heads, n, n)} -> base64 of the float32 stack (for the parity check in CPython)."""
    a = np.stack([np.asarray(att[l], dtype="<f4") for l in range(N_LAYERS)])
    return base64.b64encode(a.tobytes()).decode()


def settle(text, seconds):
    """Let the wasm engine tier up before anything is timed (the peer page does the same)."""
    t0, i = time.perf_counter(), 0
    while i < 3 or time.perf_counter() - t0 < seconds:
        edit_all(text)
        i += 1


def run(texts, warmup, reps, base, settle_s=3.0):
    settle(texts[-1], settle_s)
    rows = []
    for text in texts:
        n = len(TOK.encode(text).ids)
        r = {"n": n, "layer0": time_it(edit_layer0, text, warmup, reps), "all": time_it(edit_all, text, warmup, reps),
             "attentions": pack(edit_all(text))}
        edit_layer0(text)
        r["temperature"] = time_it(temperature_change, text, warmup, reps)
        if base:
            r["base_layer0"] = time_it(base_layer0, text, warmup, reps)
            r["base_all"] = time_it(base_all, text, warmup, reps)
            r["base_attentions"] = pack(base_all(text))
        rows.append(r)
    return json.dumps(rows)


# ---- one thread against two (in the worker, THREADS): the same products split with web/gemm-thread.js --------
def set_threads(on):
    """Switch the kernel's second thread on / off (the benchmark's 1-thread figures); returns its status."""
    t = getattr(GEMM, "threads", None)
    if t is not None:
        t.enabled = bool(on)
    return threads_status()


def threads_status():
    if not THREADS:
        return {"threads": 1, "problem": "not started in a worker with threads"}
    from pyapp.browser import gemm_threads
    return gemm_threads.status()


def time_pair(fn, text, warmup, reps):
    """``fn`` timed with one thread and with two, alternately (the machine's load hits both alike)."""
    for on in (False, True) * warmup:
        set_threads(on)
        fn(text)
    ts = {1: [], 2: []}
    for _ in range(reps):
        for on in (False, True):
            set_threads(on)
            t0 = time.perf_counter()
            fn(text)
            ts[2 if on else 1].append((time.perf_counter() - t0) * 1e3)
    set_threads(True)
    return {str(k): {"median": median(v), "min": min(v), "max": max(v)} for k, v in ts.items()}


def run_threads(texts, warmup, reps, settle_s=3.0):
    """(a) and (b) with one thread and with two, per text; + whether the two give the same attentions."""
    settle(texts[-1], settle_s)
    rows = []
    for text in texts:
        before = threads_status()
        r = {"n": len(TOK.encode(text).ids), "layer0": time_pair(edit_layer0, text, warmup, reps),
             "all": time_pair(edit_all, text, warmup, reps)}
        set_threads(False)
        one = edit_all(text)
        set_threads(True)
        two = edit_all(text)
        r["same_attentions"] = all(np.array_equal(one[l], two[l]) for l in range(N_LAYERS))
        after = threads_status()
        r["thread_jobs"] = after.get("thread_jobs", 0) - before.get("thread_jobs", 0)
        r["taken_back"] = after.get("taken_back", 0) - before.get("taken_back", 0)
        rows.append(r)
    return json.dumps({"rows": rows, "status": threads_status()})


def profile(what, text, reps=3, top=25):
    """cProfile of one of the timed functions (tottime order) -- where the time goes, inside Pyodide."""
    import cProfile, io, pstats
    fn = globals()[what]
    fn(text)
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(reps):
        fn(text)
    pr.disable()
    out = io.StringIO()
    pstats.Stats(pr, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ---- redraw of an n x n heatmap with the app's own colormap + canvas image path ----------------------------
def redraw(n, size_css, warmup, reps):
    import js
    from pyapp.draw.heatmap import heatmap_image
    from pyapp.browser import canvas as canvas_backend
    rng = np.random.RandomState(0)
    m = rng.random_sample((n, n)).astype(np.float32)
    m /= m.sum(axis=1, keepdims=True)
    cv = js.document.getElementById("heatmap")
    cv.width = cv.height = size_css
    ctx = cv.getContext("2d")

    def draw(_):
        op = {"op": "image", "rgba": heatmap_image(m), "x": 0.0, "y": 0.0, "w": float(size_css), "h": float(size_css)}
        canvas_backend._image(ctx, op, 1.0)
    from pyapp.draw.scene import nearest_upscale
    from pyapp.browser.compat import rgba_to_clamped
    rgba = heatmap_image(m)
    up = nearest_upscale(rgba, size_css, size_css)
    parts = {"colormap (heatmap_image)": lambda _: heatmap_image(m),
             "nearest_upscale to %dpx" % size_css: lambda _: nearest_upscale(rgba, size_css, size_css),
             "rgba_to_clamped + ImageData": lambda _: js.ImageData.new(rgba_to_clamped(up), size_css, size_css)}
    ri = (np.arange(size_css) * n // size_css).astype(np.intp)

    def draw_u32(_):                       # the same pixels, upscaled as one uint32 per pixel (proposed)
        rgba = np.ascontiguousarray(heatmap_image(m))
        up = rgba.view(np.uint32).reshape(n, n).take(ri, axis=0).take(ri, axis=1).view(np.uint8)
        up = up.reshape(size_css, size_css, 4)
        ctx.putImageData(js.ImageData.new(rgba_to_clamped(up), size_css, size_css), 0, 0)
    rgba0 = np.ascontiguousarray(rgba)
    same = bool((rgba0.view(np.uint32).reshape(n, n).take(ri, axis=0).take(ri, axis=1).view(np.uint8)
                 .reshape(size_css, size_css, 4) == up).all())
    out = time_it(draw, None, warmup, reps)
    out["uint32_upscale"] = time_it(draw_u32, None, warmup, reps)
    out["uint32_same_pixels"] = same
    out["parts"] = {k: time_it(f, None, warmup, reps)["median"] for k, f in parts.items()}
    return json.dumps(out)
'''
