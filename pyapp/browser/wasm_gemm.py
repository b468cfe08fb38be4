"""``matmul_t`` on a WebAssembly SIMD (f32x4) GEMM kernel, for runtimes whose numpy has no BLAS (Pyodide 0.17).

numpy 1.17.5 in Pyodide 0.17.1 multiplies matrices with scalar WebAssembly loops (~3.5-5 GFLOP/s at best); the
kernel in ``gemm_wasm.py`` (built by ``scripts/build_gemm_wasm.py`` from ``scripts/gemm_simd.wat``) runs
4 x 8 register tiles of f32x4 multiply-adds over weight panels that stay in L1: ~15-20 GFLOP/s.  Where the
engine has relaxed SIMD (Chromium), its relaxed build (``scripts/gemm_relaxed.wat``) runs instead: 6 x 8 tiles
of ``f32x4.relaxed_madd``, fused multiply-adds on CPUs with FMA, ~1.3x faster (one rounding per term, so
there the products are no longer numpy's bits, but closer to the exact sums).

The kernel is its own WebAssembly instance with its own memory (Pyodide does not hand out its
``WebAssembly.Memory``); both memories are reached from here through typed arrays, with no JavaScript source:

* each weight matrix is packed (panels of 8 output columns) and copied into the kernel's memory once, on first
  use; the copy is forgotten (its space reused) with the weight array, like ``numerics.transposed``;
* per call, x is copied in and the product out: ``Float32Array.set`` between Pyodide's heap (``HEAPF32``, at
  the numpy buffers' addresses) and the kernel's memory, two memcpy's (the views' methods fetched once:
  ``_refresh_views``).

The per-head products (``numerics.batched_matmul``: Q K^T, probs @ V) go through ``gemm_batch``, both operands
copied (and the second packed) per call.  ``install()`` compiles the kernel, checks it against numpy on a small
product and plugs it into ``numerics.set_matmul_backend`` / ``set_batched_matmul_backend``; without
WebAssembly SIMD (or anything else missing) it leaves numpy in place.  Each output element is one float32 sum
over the inner index in order, multiply then add: the order of numpy's einsum and non-BLAS matmul loops, so
the results agree with numpy's to float32 rounding (in practice bit for bit: bench/README.md).

The same kernel module also runs the elementwise hot spots (``WasmElementwise``, plugged into
``numerics.set_elementwise_backend``): softmax, GELU, SiLU and exp on f32x4 lanes, the numpy code's operations in
its order, so their results are numpy's bit for bit; ``install()`` checks that on edge values before using them.
Only arrays of ``numerics.SMALL`` elements or more go there (below that numpy's exp is ``np.exp``), except the
softmax: its small arrays (a short sentence's attention) go to ``softmax_small``, which replays the C library's
``expf`` of Pyodide 0.17.1 (``np.exp``'s bits; ``small_softmax_check`` makes sure before it is used).  LayerNorm
goes there at any size (``numerics.set_layer_norm_backend``; checked the same way, by ``layer_norm_check``): a
dozen numpy passes of a few microseconds' overhead each become one call.
"""

from __future__ import annotations

import base64
import weakref
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..core import numerics
from .compat import address, emscripten_module, js, to_uint8array
from .gemm_wasm import WASM_BASE64, WASM_RELAXED_BASE64, WASM_RELAXED_SHARED_BASE64, WASM_SHARED_BASE64

PANEL = 8  # output columns per packed weight panel (the kernel's tile width)
MIN_WORK = 1 << 15  # n * in * out below this: numpy (a call costs a few JS round trips, ~0.05 ms)
MIN_BATCHED_WORK = 1 << 18  # h * n * m * p below this: numpy (the second operand is packed on every call)
PAGE = 65536


def _plain_exports(instance):
    """``instance.exports`` copied into an ordinary object, all in JavaScript (Pyodide 0.17 cannot wrap the
    exports object itself: it has no prototype)."""
    wrapped = js.Array.of(0).map(js.Reflect.get.bind(None, instance, "exports", instance))  # [exports]
    return js.Reflect.apply(js.Object.assign, None, js.Array.of(js.Object.new()).concat(wrapped))


# (shared memory, relaxed SIMD) -> the build's bytes (base64): scripts/build_gemm_wasm.py
BUILDS = {(False, False): WASM_BASE64, (True, False): WASM_SHARED_BASE64,
          (False, True): WASM_RELAXED_BASE64, (True, True): WASM_RELAXED_SHARED_BASE64}


class WasmGemm:
    """The kernel instance, its memory, and which weight matrices it holds (callable as a matmul backend)."""

    def __init__(self, module=None, memory=None, relaxed: Optional[bool] = None):
        """``memory``: a shared ``WebAssembly.Memory`` to run the kernel's shared build on (gemm_threads.py).
        ``relaxed``: the build whose products are relaxed SIMD's fused multiply-adds (scripts/gemm_relaxed.wat:
        ~1.3x the GFLOP/s in Chromium, one rounding per term) or the plain one (mul then add: numpy's bits);
        None: the relaxed build where this engine validates it, else the plain one (``self.relaxed`` says)."""
        self.module = module if module is not None else emscripten_module()
        shared = memory is not None
        if relaxed is None:
            relaxed = bool(js.WebAssembly.validate(self._bytes(BUILDS[shared, True])))
        self.relaxed = bool(relaxed)
        code = self._bytes(BUILDS[shared, self.relaxed])
        self.code = js.WebAssembly.Module.new(code)  # the compiled kernel (gemm_threads sends it to its thread)
        imports = js.Object.new()
        if memory is not None:
            imports.env = js.Object.new()
            imports.env.memory = memory
        instance = js.WebAssembly.Instance.new(self.code, imports)
        self.exports = _plain_exports(instance)
        self.memory = self.exports.memory if memory is None else memory
        self.shared = memory is not None
        self._gemm = self.exports.gemm
        self._gemm_batch = self.exports.gemm_batch
        self._f32 = js.Float32Array.new(self.memory.buffer)
        self.refreshes = -1  # how often the copies' views were fetched again after a memory grew
        self._refresh_views()
        self._top = 64  # bump pointer (bytes); space freed by dead weights is reused by size
        self._free: Dict[int, List[int]] = {}
        self._weights: Dict[int, Tuple["weakref.ref", int]] = {}
        self._scratch = (0, 0)  # (offset, bytes) for x and the product
        self.calls = 0
        self.failures = 0
        self.threads = None  # gemm_threads.GemmThreads once a second thread shares the products

    def _bytes(self, b64: str):
        """A JS Uint8Array of a build's bytes."""
        return to_uint8array(np.frombuffer(base64.b64decode(b64), dtype=np.uint8).copy(), self.module)

    # ---- kernel memory ----------------------------------------------------------------------------------
    def _alloc(self, nbytes: int) -> int:
        nbytes = (nbytes + 63) // 64 * 64
        free = self._free.get(nbytes)
        if free:
            return free.pop()
        off, self._top = self._top, self._top + nbytes
        have = int(self.memory.buffer.byteLength)
        if self._top > have:
            self.memory.grow((self._top - have + PAGE - 1) // PAGE)
            self._f32 = js.Float32Array.new(self.memory.buffer)  # the old view is detached by grow
            self._refresh_views()
        return off

    def _release(self, off: int, nbytes: int) -> None:
        self._free.setdefault((nbytes + 63) // 64 * 64, []).append(off)

    def _refresh_views(self) -> None:
        """The four JS methods every copy calls, fetched once (each lookup through a proxy costs as much as the
        call): ``subarray`` / ``set`` of Pyodide's HEAPF32 and of the kernel's Float32Array. Again after either
        memory grows: a grown memory detaches the old views, and a detached view throws when used."""
        heap = self.module.HEAPF32
        self.refreshes += 1
        self._heap_subarray, self._heap_set = heap.subarray, heap.set
        self._f32_subarray, self._f32_set = self._f32.subarray, self._f32.set

    def _upload(self, a: np.ndarray, off: int) -> None:
        """Copy a contiguous float32 array into the kernel's memory at byte offset ``off``."""
        start = address(a) // 4
        self._fresh(lambda: self._f32_set(self._heap_subarray(start, start + a.size), off // 4))

    def _fresh(self, copy) -> None:
        """Run ``copy()``; when it throws (Python's heap grew since the views were fetched: a detached view),
        fetch the views again and run it once more."""
        try:
            copy()
        except Exception:  # noqa: BLE001 - retried once on fresh views; a second failure propagates
            self._refresh_views()
            copy()

    def weight_offset(self, weight: np.ndarray) -> int:
        """Where the packed ``weight`` (out, in) sits in the kernel's memory (packed and copied on first use)."""
        out, k = weight.shape
        return self._resident(weight, lambda: np.ascontiguousarray(  # (out/8, in, 8): panel j = W^T[:, 8j:8j+8]
            np.asarray(weight, dtype=np.float32).reshape(out // PANEL, PANEL, k).transpose(0, 2, 1)))

    def vector_offset(self, vector: np.ndarray) -> int:
        """Where the float32 ``vector`` (a LayerNorm's weight or bias) sits in the kernel's memory (copied on first
        use)."""
        return self._resident(vector, lambda: np.ascontiguousarray(vector, dtype=np.float32))

    def _resident(self, array: np.ndarray, layout) -> int:
        """Byte offset of ``layout()`` (the kernel's copy of ``array``), made and copied in on the first call for
        this array; forgotten (its space reused) with the array."""
        key = id(array)
        hit = self._weights.get(key)
        if hit is not None and hit[0]() is array:
            return hit[1]
        packed = layout()
        off = self._alloc(packed.nbytes)
        self._upload(packed, off)
        nbytes = packed.nbytes

        def forget(_r, key=key, off=off, nbytes=nbytes):
            self._weights.pop(key, None)
            self._release(off, nbytes)

        try:
            self._weights[key] = (weakref.ref(array, forget), off)
        except TypeError:  # not weak-referenceable: keep it uploaded for good (never the case for ndarrays)
            pass
        return off

    def _scratch_for(self, nbytes: int) -> int:
        off, size = self._scratch
        if size < nbytes:
            if size:
                self._release(off, size)
            size = max(nbytes, 2 * size)
            off = self._alloc(size)
            self._scratch = (off, (size + 63) // 64 * 64)
        return off

    # ---- the product ------------------------------------------------------------------------------------
    def matmul_t(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """x (n, in) @ weight.T (out, in) -> (n, out) float32, on the kernel."""
        n, k = x.shape
        m = weight.shape[0]
        w_off = self.weight_offset(weight)
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.empty((n, m), dtype=np.float32)
        x_off = self._scratch_for(x.nbytes + y.nbytes)
        y_off = x_off + x.nbytes
        self._upload(x, x_off)
        self._gemm(x_off, w_off, y_off, n, k, m)
        self._download(y, y_off)
        self.calls += 1
        return y

    def _download(self, y: np.ndarray, off: int) -> None:
        """Copy the kernel's memory at byte offset ``off`` into the contiguous float32 array ``y``."""
        start = address(y) // 4
        self._fresh(lambda: self._heap_set(self._f32_subarray(off // 4, off // 4 + y.size), start))

    def batched_matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a (h, n, m) @ b (h, m, p) -> (h, n, p) float32, on the kernel (b packed on the way in)."""
        h, n, k = a.shape
        p = b.shape[2]
        p8 = -(-p // PANEL) * PANEL
        if p8 != p:  # pad the columns to whole panels (zeros), cut them off again below
            padded = np.zeros((h, k, p8), dtype=np.float32)
            padded[:, :, :p] = b
            b = padded
        packed = np.ascontiguousarray(  # (h, p8/8, m, 8): panel j of head g = b[g][:, 8j:8j+8]
            b.reshape(h, k, p8 // PANEL, PANEL).transpose(0, 2, 1, 3), dtype=np.float32)
        a = np.ascontiguousarray(a, dtype=np.float32)
        y = np.empty((h, n, p8), dtype=np.float32)
        a_off = self._scratch_for(a.nbytes + packed.nbytes + y.nbytes)
        b_off = a_off + a.nbytes
        y_off = b_off + packed.nbytes
        self._upload(a, a_off)
        self._upload(packed, b_off)
        self._gemm_batch(a_off, b_off, y_off, h, n, k, p8)
        self._download(y, y_off)
        self.calls += 1
        return y if p8 == p else y[:, :, :p]  # (h, n, p)

    def batched(self, a: np.ndarray, b: np.ndarray) -> Optional[np.ndarray]:
        """The ``numerics`` batched backend: the kernel's stack of products, or None (numpy) when small."""
        if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
            return None
        if a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2] < MIN_BATCHED_WORK:
            return None
        try:
            return self.batched_matmul(a, b)
        except Exception:  # noqa: BLE001 - as in __call__
            self.failures += 1
            return None

    def __call__(self, x: np.ndarray, weight: np.ndarray) -> Optional[np.ndarray]:
        """The ``numerics`` backend: the kernel's product, or None (numpy) for shapes it does not take."""
        if x.ndim != 2 or weight.ndim != 2 or weight.shape[1] != x.shape[1] or weight.shape[0] % PANEL:
            return None
        if x.shape[0] * x.shape[1] * weight.shape[0] < MIN_WORK:
            return None
        try:
            return self.matmul_t(x, weight)
        except Exception:  # noqa: BLE001 - e.g. a JS view detached by a memory growth: numpy does this one
            self.failures += 1
            return None


# ---- elementwise kernels: softmax, GELU, SiLU, exp (numerics.set_elementwise_backend) ------------------------

MIN_ELEMENTWISE = numerics.SMALL  # fewer elements: numpy (there numerics.exp is np.exp, which no kernel matches)
SOFTMAX_MAX_ROW = 8192  # longer rows (a vocabulary): numpy (its sum may then go by buffered chunks, another order)
CHUNK = 1 << 22  # elements per kernel call at most (16 MB in, 16 MB out of the kernel's memory, reused)


class WasmElementwise:
    """The kernel's elementwise functions on the GEMM instance's memory, as a ``numerics`` elementwise backend.

    ``vexp`` / ``gelu`` / ``silu`` (src, dst, n) and ``softmax`` (src, dst, rows, n) repeat the numpy code of
    ``numerics.exp`` (polynomial path), ``layers.gelu`` / ``layers.silu`` and ``attention.softmax`` step for step
    on f32x4 lanes (same constants, same order, no FMA; the softmax's row sum in numpy's pairwise order): the same
    bits.  Per call x is copied in and the result out, like the GEMM's operands.
    """

    def __init__(self, gemm: WasmGemm):
        self.gemm = gemm
        ex = gemm.exports
        self._maps = {"exp": ex.vexp, "gelu": ex.gelu, "silu": ex.silu}
        self._softmax = ex.softmax
        self._softmax_small = ex.softmax_small
        self._layer_norm = ex.layer_norm
        self.small_softmax = False  # softmax_small (np.exp's bits) checked by install(): softmaxes below SMALL too
        self._scratch = (0, 0)  # (offset, bytes): src, then dst, then 64 spare bytes
        self.calls = 0
        self.failures = 0

    def _buffers(self, nbytes: int) -> Tuple[int, int]:
        """Byte offsets of src and dst (nbytes each).  The kernels go over whole (pairs of) vectors: up to 28 bytes
        past the end of src (read; they land in dst) and of dst (written; the spare bytes, 128 of them: a softmax
        split over two threads may put its second half ``gemm_threads.GAP`` = 64 bytes further on)."""
        half = (nbytes + 63) // 64 * 64
        need = 2 * half + 128
        off, size = self._scratch
        if size < need:
            if size:
                self.gemm._release(off, size)
            size = max(need, 2 * size)
            off = self.gemm._alloc(size)
            self._scratch = (off, (size + 63) // 64 * 64)
        return off, off + half

    def run(self, op: str, x: np.ndarray) -> np.ndarray:
        """``op`` ("exp", "gelu", "silu", "softmax" or "softmax_small" over the last axis) of a float32 array, on the
        kernel.  "softmax_small" is the softmax with np.exp's bits (``_expf_libm4`` in scripts/build_gemm_wasm.py:
        the C library's expf, which the numpy code's exp is below numerics.SMALL elements)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.empty(x.shape, dtype=np.float32)
        if x.size == 0:
            return y
        n = x.shape[-1] if op.startswith("softmax") else 4
        step = max(1, CHUNK // n) * n  # whole rows (softmax) or vectors at a time: bounded kernel memory
        src, dst = self._buffers(min(x.size, step) * 4)
        for part_x, part_y in _pieces(x, y, step):
            self.gemm._upload(part_x, src)
            for first, count, off in self._kernel(op, src, dst, part_x.size, n):
                self.gemm._download(part_y if count == part_y.size else part_y.reshape(-1)[first:first + count], off)
        self.calls += 1
        return y

    def _kernel(self, op: str, src: int, dst: int, size: int, n: int):
        """Run ``op`` on ``size`` floats at ``src`` (rows of ``n`` for the softmax) into ``dst``, about half on the
        GEMM's helper thread when it has one and the array is large (``gemm_threads``); returns where the output
        is: ((first element, elements, byte offset), ...)."""
        fn = self._softmax if op == "softmax" else self._softmax_small if op == "softmax_small" else self._maps[op]
        threads = self.gemm.threads
        if threads is not None and op != "softmax_small":  # (small: never worth a split; the thread has no such op)
            pieces = threads.elementwise_call(op, fn, src, dst, size, n)
            if pieces is not None:
                return pieces
        if op.startswith("softmax"):
            fn(src, dst, size // n, n)
        else:
            fn(src, dst, size)
        return ((0, size, dst),)

    def layer_norm(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> Optional[np.ndarray]:
        """The ``numerics`` LayerNorm backend: ``layers.layer_norm`` on the kernel, or None (numpy) for what it does
        not take (any size: a LayerNorm has no exp; weight and bias stay in the kernel's memory, like the GEMM's)."""
        d = x.shape[-1] if x.ndim else 0
        if (x.dtype != np.float32 or x.size == 0 or d == 0 or getattr(weight, "shape", None) != (d,)
                or getattr(bias, "shape", None) != (d,) or weight.dtype != np.float32 or bias.dtype != np.float32):
            return None
        try:
            return self.run_layer_norm(x, weight, bias, eps)
        except Exception:  # noqa: BLE001 - as in WasmGemm.__call__: numpy does this one
            self.failures += 1
            return None

    def run_layer_norm(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
        """LayerNorm over the last axis of a float32 array on the kernel (whole rows per call, one thread)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.empty(x.shape, dtype=np.float32)
        d = x.shape[-1]
        w_off, b_off = self.gemm.vector_offset(weight), self.gemm.vector_offset(bias)
        step = max(1, CHUNK // d) * d
        src, dst = self._buffers(min(x.size, step) * 4)
        for part_x, part_y in _pieces(x, y, step):
            self.gemm._upload(part_x, src)
            self._layer_norm(src, dst, part_x.size // d, d, w_off, b_off, float(eps))
            self.gemm._download(part_y, dst)
        self.calls += 1
        return y

    def __call__(self, op: str, x: np.ndarray) -> Optional[np.ndarray]:
        """The ``numerics`` elementwise backend: the kernel's result, or None (numpy) for what it does not take."""
        if x.dtype != np.float32:
            return None
        if op == "softmax":
            if x.ndim < 1 or not 0 < x.shape[-1] <= SOFTMAX_MAX_ROW:
                return None
            if x.size < MIN_ELEMENTWISE:  # the numpy code's exp is np.exp there: the kernel with its bits, if checked
                if not self.small_softmax:
                    return None
                op = "softmax_small"
        elif op not in self._maps or x.size < MIN_ELEMENTWISE:
            return None
        try:
            return self.run(op, x)
        except Exception:  # noqa: BLE001 - as in WasmGemm.__call__: numpy does this one
            self.failures += 1
            return None


def _pieces(x: np.ndarray, y: np.ndarray, step: int):
    """(part of x, the same part of y) of ``step`` elements at most, in order (contiguous arrays): x and y
    themselves when they fit (the usual case: no flat views, no slices)."""
    if x.size <= step:
        return ((x, y),)
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)
    return ((flat_x[i:i + step], flat_y[i:i + step]) for i in range(0, x.size, step))


def _same_bits(got: np.ndarray, want: np.ndarray) -> bool:
    """Equal shapes and float32 bit patterns (any NaN matches any NaN)."""
    if got.shape != want.shape or got.dtype != np.float32 or want.dtype != np.float32:
        return False
    nan = np.isnan(got)
    return bool(np.array_equal(nan, np.isnan(want))
                and np.array_equal(got.view(np.uint32)[~nan], want.view(np.uint32)[~nan]))


def elementwise_check(ew: WasmElementwise) -> str:
    """The kernels against the numpy code (run here with no backend set) on random data with edge values
    (+-0, +-inf, NaN, |x| large and tiny, fully and partly masked rows); "" if every bit agrees, else what differs."""
    from ..core import attention, layers

    saved = numerics.set_elementwise_backend(None)
    small, numerics.SMALL = numerics.SMALL, 1  # numpy's polynomial exp at any size: small arrays suffice here
    try:
        x = (np.sin(np.arange(1021) * 0.7) * np.arange(1021) * 0.02).astype(np.float32)  # |x| < 21; 1021 % 4 = 1
        x[:12] = [0.0, -0.0, np.inf, -np.inf, np.nan, 100.0, -100.0, 1e-30, -1e-30, 88.5, -87.5, 9.5]
        for op, fn in (("exp", numerics.exp), ("gelu", layers.gelu), ("silu", layers.silu)):
            if not _same_bits(ew.run(op, x), fn(x)):
                return "the kernel's %s differs from numpy's" % op
        s = (np.cos(np.arange(3 * 6 * 139) * 1.3) * 9).astype(np.float32).reshape(3, 6, 139)  # rows of 139: the
        #                                                                       pairwise sum splits them
        s[2, np.triu(np.ones((6, 139), dtype=bool), 1)] = -np.inf  # causal-style mask on one head
        s[0, 0, :] = -np.inf  # a fully masked row: NaN, as numpy
        s[1, 2, 5] = np.nan
        if not _same_bits(ew.run("softmax", s), attention.softmax(s)):
            return "the kernel's softmax differs from numpy's"
    finally:
        numerics.SMALL = small
        numerics.set_elementwise_backend(saved)
    return ""


def layer_norm_check(ew: WasmElementwise) -> str:
    """The kernel's LayerNorm against the numpy code (no backend set) on rows of every length class (n % 8 and
    n % 4 nonzero, the pairwise sum's split past 128), a constant row (variance 0), huge, tiny, inf and NaN entries,
    two epsilons; "" if every bit agrees, else what differs."""
    from ..core import layers

    saved = numerics.set_layer_norm_backend(None)
    try:
        rng = np.random.RandomState(5)
        for n, eps in ((384, 1e-12), (7, 1e-5), (13, 1e-12), (129, 1e-5), (300, 1e-6), (768, 1e-12)):
            x = (rng.standard_normal((24, n)) * rng.uniform(0.01, 50.0, (24, 1)) + 2).astype(np.float32)
            x[1] = 3.25  # variance 0
            x[2, :3] = [1e30, -1e-30, 0.0]
            x[3, 0] = np.inf
            x[4, n // 2] = np.nan
            w = rng.standard_normal(n).astype(np.float32)
            b = rng.standard_normal(n).astype(np.float32)
            if not _same_bits(ew.run_layer_norm(x, w, b, eps), layers.layer_norm(x, w, b, eps)):
                return "the kernel's layer_norm differs from numpy's (n = %d)" % n
    finally:
        numerics.set_layer_norm_backend(saved)
    return ""


def small_softmax_check(ew: WasmElementwise) -> str:
    """The kernel's small softmax (np.exp's bits) against the numpy code on arrays below numerics.SMALL elements:
    every range of the C library's expf (|x| <= 2^-14, around 0.5 ln 2 and 1.5 ln 2, results that are subnormal or
    0, -inf, NaN), rows of 1 to 139 (the pairwise sum's split); "" if every bit agrees, else what differs."""
    from ..core import attention

    saved = numerics.set_elementwise_backend(None)
    try:
        rng = np.random.RandomState(7)
        edges = np.array([0.0, -0.0, -1e-5, -6e-5, -0.3465, -0.3467, -1.0397, -1.0398, -5.0, -87.3, -87.4, -95.0,
                          -103.9, -104.0, -1e4, -np.inf, np.nan], dtype=np.float32)
        for shape, scale in (((6, 13, 13), 4.0), ((3, 5, 139), 30.0), ((40, 1), 1.0), ((7, 64), 0.5),
                             ((2, 9, 33), 60.0)):
            s = (rng.standard_normal(shape) * scale).astype(np.float32)
            flat = s.reshape(-1)
            flat[rng.randint(0, flat.size, 12)] = edges[rng.randint(0, edges.size, 12)]
            flat[:min(edges.size, flat.size)] = edges[:min(edges.size, flat.size)]
            if not _same_bits(ew.run("softmax_small", s), attention.softmax(s)):
                return "the kernel's small softmax differs from numpy's (%s)" % (shape,)
    finally:
        numerics.set_elementwise_backend(saved)
    return ""


elementwise: Optional[WasmElementwise] = None
elementwise_problem = ""  # why the elementwise kernels were left out (numpy does them)
layer_norm_problem = ""  # why the LayerNorm kernel was left out (numpy does it)
small_softmax_problem = ""  # why softmaxes below numerics.SMALL elements stay with numpy


def _install_elementwise(gemm: WasmGemm) -> Optional[WasmElementwise]:
    """Plug the elementwise kernels into ``numerics.set_elementwise_backend`` if they pass ``elementwise_check``."""
    global elementwise, elementwise_problem
    try:
        ew = WasmElementwise(gemm)
        elementwise_problem = elementwise_check(ew)
    except Exception as e:  # noqa: BLE001 - e.g. a kernel build without them: numpy does them
        elementwise_problem = "%s: %s" % (type(e).__name__, e)
    if elementwise_problem:
        return None
    numerics.set_elementwise_backend(ew)
    elementwise = ew
    _install_layer_norm(ew)
    _install_small_softmax(ew)
    return ew


def _install_small_softmax(ew: WasmElementwise) -> None:
    """Let ``ew`` take softmaxes below numerics.SMALL elements if its small softmax passes ``small_softmax_check``
    (the C library's expf replayed: true of Pyodide 0.17.1's numpy; another libm fails the check, numpy stays)."""
    global small_softmax_problem
    try:
        small_softmax_problem = small_softmax_check(ew)
    except Exception as e:  # noqa: BLE001 - numpy does them
        small_softmax_problem = "%s: %s" % (type(e).__name__, e)
    ew.small_softmax = not small_softmax_problem


def _install_layer_norm(ew: WasmElementwise) -> None:
    """Plug the LayerNorm kernel into ``numerics.set_layer_norm_backend`` if it passes ``layer_norm_check``."""
    global layer_norm_problem
    try:
        layer_norm_problem = layer_norm_check(ew)
    except Exception as e:  # noqa: BLE001 - numpy does it
        layer_norm_problem = "%s: %s" % (type(e).__name__, e)
    if not layer_norm_problem:
        numerics.set_layer_norm_backend(ew.layer_norm)


_installed: Optional[WasmGemm] = None
problem = ""  # why install() left numpy in place (for the benchmark and debugging)


def install(threads: bool = False) -> Optional[WasmGemm]:
    """Plug the kernel into ``numerics.matmul_t`` if this browser runs WebAssembly SIMD; else keep numpy.

    Checks the kernel against numpy on a small product first (a wrong answer would be worse than a slow one).
    Returns the kernel (``None`` when numpy stays).  Safe to call twice.  ``threads`` (a worker's call): run
    the large products on two threads when this worker can (``gemm_threads``: why not in its ``problem``).
    """
    global _installed, problem
    if _installed is not None:
        return _installed
    try:
        gemm = None
        if threads:
            from . import gemm_threads
            gemm = gemm_threads.shared_gemm()  # None (one thread, reason in gemm_threads.problem)
        if gemm is None:
            gemm = WasmGemm()
        rng = np.random.RandomState(0)
        x = rng.standard_normal((5, 40)).astype(np.float32)
        w = rng.standard_normal((24, 40)).astype(np.float32)
        want = x.astype(np.float64) @ w.T.astype(np.float64)
        a, b = x.reshape(1, 5, 40), w.T.reshape(1, 40, 24)[:, :, :21]
        if not (np.allclose(gemm.matmul_t(x, w), want, rtol=1e-5, atol=1e-5)
                and np.allclose(gemm.batched_matmul(a, b)[0], want[:, :21], rtol=1e-5, atol=1e-5)):
            problem = "the kernel's product differs from numpy's"
            return None
    except Exception as e:  # noqa: BLE001 - no SIMD, no Pyodide heap, ...: numpy it is
        problem = "%s: %s" % (type(e).__name__, e)
        return None
    numerics.set_matmul_backend(gemm)
    numerics.set_batched_matmul_backend(gemm.batched)
    _installed = gemm
    _install_elementwise(gemm)  # softmax, GELU, SiLU, exp: numpy's bits on f32x4 lanes (or numpy, silently)
    if threads and gemm.shared and gemm.threads is None:
        from . import gemm_threads
        gemm_threads.start(gemm)  # the helper thread; products stay on one thread until it is ready
    return gemm
