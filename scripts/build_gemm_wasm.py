"""Build the WebAssembly SIMD GEMM kernel used by the browser's ``matmul_t`` (pyapp/browser/wasm_gemm.py).

    python scripts/build_gemm_wasm.py            # write scripts/gemm_simd.wat, gemm_relaxed.wat, pyapp/browser/gemm_wasm.py
    python scripts/build_gemm_wasm.py --check    # exit 1 if any of them is out of date

The kernel's text (WebAssembly text format) is generated here, from one register-tile template, into
``scripts/gemm_simd.wat`` (checked in, to read); ``wat2wasm`` from npm ``wabt`` (a test dependency in package.json, not part of the site; or pass
``--wat2wasm PATH``) assembles it, and the bytes go, base64,
into ``pyapp/browser/gemm_wasm.py`` so the page needs no extra fetch.

The kernel: ``gemm``: C (n, m) = X (n, k) @ W (k, m) in float32 with f32x4 lanes. W is packed once per weight matrix in
panels of 8 columns (k rows of 8 contiguous floats, 32 bytes a row) so a panel (12 KB at k = 384) stays in L1
while every block of ROWS rows of X passes over it; the tile keeps ROWS x 8 sums in 2 x ROWS v128 locals.
Each output is one float32 sum over p = 0..k-1 in order (mul then add: no fused multiply-add), the order of
numpy's einsum / non-BLAS matmul loops, so the products agree with numpy's bit for bit in practice.
``gemm_batch`` runs ``gemm`` over h stacked products (the per-head Q K^T and probs @ V).

A second text, ``scripts/gemm_relaxed.wat`` (``wat(relaxed=True)``), is the same module with the GEMM's
multiply-adds as relaxed SIMD's ``f32x4.relaxed_madd`` in 6 x 8 tiles: fused on CPUs with FMA, ~1.3x the plain
build's GFLOP/s in Chromium (bench/README.md); one rounding per term instead of two, so no longer numpy's bits.
``wasm_gemm`` runs it where the engine validates it, the plain build elsewhere.

The same module holds the elementwise hot spots of a block (``elementwise_funcs``): ``vexp``, ``gelu``, ``silu``
(src, dst, n), ``softmax`` (src, dst, rows, n: row max, e**(x - max), numpy's pairwise row sum, divide) and
``layer_norm`` (src, dst, rows, n, w, b, eps).  They repeat the numpy code of ``pyapp.core`` (``numerics.exp``'s
polynomial path, ``layers.gelu``/``silu``/``layer_norm``, ``attention.softmax``) operation for operation on f32x4 lanes, with its float32 constants read from those modules,
so their results are numpy's bit for bit (checked in the browser by tests/browser/test_wasm_gemm.py, and by
``wasm_gemm.install()`` before it uses them).
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
WAT = ROOT / "scripts" / "gemm_simd.wat"
PY = ROOT / "pyapp" / "browser" / "gemm_wasm.py"
ROWS = 4  # rows per register tile: 4 x 8 outputs = 8 v128 sums (6 rows measured no faster in V8)
RELAXED_ROWS = 6  # the relaxed build's tile: 6 x 8 sums in 12 v128 locals (+ 2 panel vectors + 1 splat: 15 of
#                   x64's 16 vector registers); with fused multiply-adds it measured ~1.3x the plain 4-row tile
RELAXED_WAT = ROOT / "scripts" / "gemm_relaxed.wat"
WABT = "wabt@1.0.39"
SHARED_MAX_PAGES = 32768  # the shared build's memory maximum (2 GiB; a shared memory must declare one)


def _acc(c: str, s: str, b: str, relaxed: bool) -> str:
    """c += s * b on 4 lanes: mul then add (numpy's rounding), or relaxed SIMD's multiply-add (fused where the
    CPU has FMA, as V8 does on x64: one rounding)."""
    if relaxed:
        return "(f32x4.relaxed_madd %s %s (local.get %s))" % (s, b, c)
    return "(f32x4.add (local.get %s) (f32x4.mul %s %s))" % (c, s, b)


def wat(R: Optional[int] = None, shared: bool = False, relaxed: bool = False) -> str:  # noqa: N803 - R as in the tile
    """The kernel's text (module exporting ``memory``, ``gemm(x, w, c, n, k, m)`` and ``gemm_ld(..., ldc)``, byte
    offsets).

    ``shared``: the same functions on an IMPORTED shared memory (``env.memory``, with a maximum) instead of an
    exported one, for two threads running the kernel on the same memory (pyapp/browser/gemm_threads.py);
    assembled with wat2wasm's threads feature.  Nothing else differs.

    ``relaxed``: the GEMM's multiply-adds are relaxed SIMD's ``f32x4.relaxed_madd`` (fused on CPUs with FMA) in
    RELAXED_ROWS-row tiles; each output is still one sum over p in order, now rounded once per term (closer to
    the exact sum, no longer numpy's bits).  The elementwise kernels are the same numpy-exact code."""
    R = R or (RELAXED_ROWS if relaxed else ROWS)  # noqa: N806
    L = []  # noqa: N806
    a = L.append
    a('(module')
    a('  ;; C (n, m) = X (n, k) @ W (k, m), float32, row-major X and C; W packed in panels of 8 columns:')
    a('  ;; panel j holds W[:, 8j:8j+8] as k rows of 8 contiguous floats (32 bytes).  Requires m % 8 == 0.')
    if relaxed:
        a('  ;; Each output element is one float32 sum over p = 0..k-1 in order (f32x4.relaxed_madd: fused with FMA).')
    else:
        a('  ;; Each output element is one float32 sum over p = 0..k-1 in order (f32x4.mul then f32x4.add).')
    a(_memory_line(shared))
    a('  ;; gemm: C rows m floats apart; gemm_ld: C rows ldc floats apart (m columns of a wider C: a column split)')
    a('  (func $gemm (export "gemm") (param $x i32) (param $w i32) (param $c i32) (param $n i32) (param $k i32) (param $m i32)')
    a('    (call $gemm_ld (local.get $x) (local.get $w) (local.get $c) (local.get $n) (local.get $k) (local.get $m)'
      ' (local.get $m))')
    a('  )')
    a('  (func $gemm_ld (export "gemm_ld") (param $x i32) (param $w i32) (param $c i32) (param $n i32) (param $k i32)'
      ' (param $m i32) (param $ldc i32)')
    a('    (local $kb i32) (local $mb i32) (local $lb i32) (local $jb i32) (local $jend i32) (local $q i32) (local $qend i32)')
    a('    (local $i i32) (local $xr i32) (local $cr i32) (local $wp i32) (local $b0 v128) (local $b1 v128) (local $s v128)')
    for r in range(R):
        a('    (local $x%d i32) (local $c%d0 v128) (local $c%d1 v128)' % (r, r, r))
    a('    (local.set $kb (i32.shl (local.get $k) (i32.const 2)))')
    a('    (local.set $mb (i32.shl (local.get $m) (i32.const 2)))')
    a('    (local.set $lb (i32.shl (local.get $ldc) (i32.const 2)))')
    a('    (local.set $jb (i32.const 0))')
    a('    (local.set $wp (local.get $w))')
    a('    (block $Jdone (loop $J')
    a('      (br_if $Jdone (i32.ge_u (local.get $jb) (local.get $mb)))')
    a('      (local.set $qend (i32.add (local.get $wp) (i32.shl (local.get $kb) (i32.const 3))))')
    a('      (local.set $i (i32.const 0))')
    a('      (local.set $xr (local.get $x))')
    a('      (local.set $cr (i32.add (local.get $c) (local.get $jb)))')
    # R-row blocks
    a('      (block $Idone (loop $I')
    a('        (br_if $Idone (i32.gt_u (i32.add (local.get $i) (i32.const %d)) (local.get $n)))' % R)
    for r in range(R):
        if r == 0:
            a('        (local.set $x0 (local.get $xr))')
        else:
            a('        (local.set $x%d (i32.add (local.get $x%d) (local.get $kb)))' % (r, r - 1))
        a('        (local.set $c%d0 (v128.const i32x4 0 0 0 0)) (local.set $c%d1 (v128.const i32x4 0 0 0 0))' % (r, r))
    a('        (local.set $q (local.get $wp))')
    a('        (loop $P')
    a('          (local.set $b0 (v128.load (local.get $q)))')
    a('          (local.set $b1 (v128.load offset=16 (local.get $q)))')
    for r in range(R):
        a('          (local.set $s (v128.load32_splat (local.get $x%d)))' % r)
        a('          (local.set $c%d0 %s)' % (r, _acc("$c%d0" % r, "(local.get $s)", "(local.get $b0)", relaxed)))
        a('          (local.set $c%d1 %s)' % (r, _acc("$c%d1" % r, "(local.get $s)", "(local.get $b1)", relaxed)))
        a('          (local.set $x%d (i32.add (local.get $x%d) (i32.const 4)))' % (r, r))
    a('          (local.set $q (i32.add (local.get $q) (i32.const 32)))')
    a('          (br_if $P (i32.ne (local.get $q) (local.get $qend))))')
    for r in range(R):
        a('        (v128.store (local.get $cr) (local.get $c%d0))' % r)
        a('        (v128.store offset=16 (local.get $cr) (local.get $c%d1))' % r)
        a('        (local.set $cr (i32.add (local.get $cr) (local.get $lb)))')
    a('        (local.set $xr (i32.add (local.get $xr) (i32.mul (local.get $kb) (i32.const %d))))' % R)
    a('        (local.set $i (i32.add (local.get $i) (i32.const %d)))' % R)
    a('        (br $I)))')
    # remainder rows, one at a time
    a('      (block $Rdone (loop $Rw')
    a('        (br_if $Rdone (i32.ge_u (local.get $i) (local.get $n)))')
    a('        (local.set $x0 (local.get $xr))')
    a('        (local.set $c00 (v128.const i32x4 0 0 0 0)) (local.set $c01 (v128.const i32x4 0 0 0 0))')
    a('        (local.set $q (local.get $wp))')
    a('        (loop $P1')
    a('          (local.set $s (v128.load32_splat (local.get $x0)))')
    a('          (local.set $c00 %s)' % _acc("$c00", "(local.get $s)", "(v128.load (local.get $q))", relaxed))
    a('          (local.set $c01 %s)' % _acc("$c01", "(local.get $s)", "(v128.load offset=16 (local.get $q))", relaxed))
    a('          (local.set $x0 (i32.add (local.get $x0) (i32.const 4)))')
    a('          (local.set $q (i32.add (local.get $q) (i32.const 32)))')
    a('          (br_if $P1 (i32.ne (local.get $q) (local.get $qend))))')
    a('        (v128.store (local.get $cr) (local.get $c00))')
    a('        (v128.store offset=16 (local.get $cr) (local.get $c01))')
    a('        (local.set $cr (i32.add (local.get $cr) (local.get $lb)))')
    a('        (local.set $xr (i32.add (local.get $xr) (local.get $kb)))')
    a('        (local.set $i (i32.add (local.get $i) (i32.const 1)))')
    a('        (br $Rw)))')
    a('      (local.set $wp (local.get $qend))')
    a('      (local.set $jb (i32.add (local.get $jb) (i32.const 32)))')
    a('      (br $J)))')
    a('  )')
    a('  ;; h products at once: X (h, n, k), W (h panels-packed k x m), C (h, n, m), each stack contiguous.')
    a('  (func (export "gemm_batch") (param $x i32) (param $w i32) (param $c i32) (param $h i32) (param $n i32)'
      ' (param $k i32) (param $m i32)')
    a('    (local $xs i32) (local $ws i32) (local $cs i32)')
    a('    (local.set $xs (i32.shl (i32.mul (local.get $n) (local.get $k)) (i32.const 2)))')
    a('    (local.set $ws (i32.shl (i32.mul (local.get $k) (local.get $m)) (i32.const 2)))')
    a('    (local.set $cs (i32.shl (i32.mul (local.get $n) (local.get $m)) (i32.const 2)))')
    a('    (block $done (loop $H')
    a('      (br_if $done (i32.eqz (local.get $h)))')
    a('      (call $gemm (local.get $x) (local.get $w) (local.get $c) (local.get $n) (local.get $k) (local.get $m))')
    a('      (local.set $x (i32.add (local.get $x) (local.get $xs)))')
    a('      (local.set $w (i32.add (local.get $w) (local.get $ws)))')
    a('      (local.set $c (i32.add (local.get $c) (local.get $cs)))')
    a('      (local.set $h (i32.sub (local.get $h) (i32.const 1)))')
    a('      (br $H)))')
    a('  )')
    L.extend(elementwise_funcs())  # softmax, GELU, SiLU, exp (below)
    if shared:
        L.extend(hand_over_funcs())  # post / join: a job for the second thread (web/gemm-thread.js)
    a(')')
    return "\n".join(L) + "\n"



# ------------------------------------------------------------------ the hand-over to the second thread (shared)
#
# pyapp/browser/gemm_threads.py posts a job into the control block (16 Int32 slots, web/gemm-thread.js documents
# them) and joins it; through Pyodide's proxies each Atomics call costs 2-7 us, ~30 us a split in all. These two
# functions do the same in one call each: the same slots, the same seq-cst operations in the same order.

def hand_over_funcs() -> list:
    """``post(ctl, op, a0..a6)``: OP and ARGS, STATE = posted (atomic), SEQ += 1, notify one waiter.
    ``join(ctl, claim_ms, polls, wait_ms)``: wait up to claim_ms for the thread to claim the job (0: not at all);
    take it back if still posted (returns 0: the caller computes it); else poll STATE ``polls`` times, then sleep in
    memory.atomic.wait32 slices of wait_ms while it is "running"; STATE = idle; returns the final state (3 done,
    4 failed)."""
    args = " ".join("(param $a%d i32)" % i for i in range(7))
    L = ['  (func (export "post") (param $ctl i32) (param $op i32) ' + args,  # noqa: N806
         '    (i32.store offset=8 (local.get $ctl) (local.get $op))']
    L += ['    (i32.store offset=%d (local.get $ctl) (local.get $a%d))' % (12 + 4 * i, i) for i in range(7)]
    L += ['    (i32.atomic.store offset=4 (local.get $ctl) (i32.const 1))',
          '    (drop (i32.atomic.rmw.add (local.get $ctl) (i32.const 1)))',
          '    (drop (memory.atomic.notify (local.get $ctl) (i32.const 1)))',
          '  )',
          '  (func (export "join") (param $ctl i32) (param $claim i32) (param $polls i32) (param $wait i32)'
          ' (result i32)',
          '    (local $state i32)',
          '    (if (local.get $claim) (then',
          '      (drop (memory.atomic.wait32 offset=4 (local.get $ctl) (i32.const 1)'
          ' (i64.mul (i64.extend_i32_u (local.get $claim)) (i64.const 1000000))))))',
          '    (if (i32.eq (i32.atomic.rmw.cmpxchg offset=4 (local.get $ctl) (i32.const 1) (i32.const 0)) (i32.const 1))',
          '      (then (return (i32.const 0))))',
          '    (local.set $state (i32.atomic.load offset=4 (local.get $ctl)))',
          '    (block $pd (loop $pl',
          '      (br_if $pd (i32.or (i32.ne (local.get $state) (i32.const 2)) (i32.eqz (local.get $polls))))',
          '      (local.set $state (i32.atomic.load offset=4 (local.get $ctl)))',
          '      (local.set $polls (i32.sub (local.get $polls) (i32.const 1)))',
          '      (br $pl)))',
          '    (block $wd (loop $wl',
          '      (br_if $wd (i32.ne (local.get $state) (i32.const 2)))',
          '      (drop (memory.atomic.wait32 offset=4 (local.get $ctl) (i32.const 2)'
          ' (i64.mul (i64.extend_i32_u (local.get $wait)) (i64.const 1000000))))',
          '      (local.set $state (i32.atomic.load offset=4 (local.get $ctl)))',
          '      (br $wl)))',
          '    (i32.atomic.store offset=4 (local.get $ctl) (i32.const 0))',
          '    (local.get $state)',
          '  )']
    return L


# ------------------------------------------------------------------ elementwise kernels (softmax, GELU, SiLU)
#
# Each is numpy's float32 path of pyapp.core, re-done with f32x4 ops in the same order (no FMA), so the results
# are bit for bit those of numerics.exp's polynomial path (arrays of >= numerics.SMALL elements), of
# attention.softmax (row max, subtract, exp, numpy's pairwise row sum, divide), layers.gelu and layers.silu.
# The constants are read from those modules (float32 bit patterns), so the two cannot drift apart.

def _f32_bits(value) -> int:
    import numpy as np
    return int(np.array(value, dtype=np.float32).view(np.uint32))


def _f32_of_bits(bits: int):
    """The float32 whose bit pattern is ``bits`` (musl's constants are given that way)."""
    import numpy as np
    return np.array(bits, dtype=np.uint32).view(np.float32)[()]


def _splat(value) -> str:
    b = "0x%08x" % _f32_bits(value)
    return "(v128.const i32x4 %s %s %s %s)" % (b, b, b, b)


def _core_constants():
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from pyapp.core import layers, numerics
    return {
        "exp_min": numerics._EXP_MIN, "exp_max": numerics._EXP_MAX, "log2e": numerics._LOG2E,
        "ln2_hi": numerics._LN2_HI, "ln2_lo": numerics._LN2_LO, "exp_poly": numerics._EXP_POLY,
        "erfc_poly": tuple(np.float32(c) for c in layers._ERFC_POLY), "inv_sqrt2": layers._INV_SQRT2,
    }


def _get(name: str) -> str:
    return "(local.get $%s)" % name


def _exp4(src: str, dst: str, c) -> list:
    """Instructions: local $dst = numerics.exp(local $src) on 4 lanes, step for step (uses $ek $er $ep)."""
    one = _splat(1.0)
    out = [
        # x = max(x, -103); min(x, 88)   (NaN stays NaN, like np.maximum / np.minimum)
        "(local.set $er (f32x4.min (f32x4.max %s %s) %s))" % (_get(src), _splat(c["exp_min"]), _splat(c["exp_max"])),
        # k = rint(x * log2 e)   (round half to even, like np.rint)
        "(local.set $ek (f32x4.nearest (f32x4.mul (local.get $er) %s)))" % _splat(c["log2e"]),
        # r = (x - k * ln2_hi) - k * ln2_lo
        "(local.set $er (f32x4.sub (f32x4.sub (local.get $er) (f32x4.mul (local.get $ek) %s))"
        " (f32x4.mul (local.get $ek) %s)))" % (_splat(c["ln2_hi"]), _splat(c["ln2_lo"])),
        "(local.set $ep (f32x4.mul (local.get $er) %s))" % _splat(c["exp_poly"][0]),
    ]
    for coef in c["exp_poly"][1:]:  # p += c; p *= r
        out.append("(local.set $ep (f32x4.mul (f32x4.add (local.get $ep) %s) (local.get $er)))" % _splat(coef))
    # p *= r; p += r; p += 1;  p *= 2**k  from ((max(int(k) + 127, 0)) << 23)
    out.append("(local.set $ep (f32x4.add (f32x4.add (f32x4.mul (local.get $ep) (local.get $er)) (local.get $er)) %s))"
               % one)
    out.append("(local.set $%s (f32x4.mul (local.get $ep) (i32x4.shl (i32x4.max_s (i32x4.add"
               " (i32x4.trunc_sat_f32x4_s (local.get $ek)) (v128.const i32x4 127 127 127 127))"
               " (v128.const i32x4 0 0 0 0)) (i32.const 23))))" % dst)
    return out


def _i32x4(value: int) -> str:
    return "(v128.const i32x4 %s)" % " ".join(["0x%08x" % (value & 0xFFFFFFFF)] * 4)


def _expf_libm4(src: str, dst: str) -> list:
    """Instructions: local $dst = expf(local $src) on 4 lanes, as the C library of Pyodide 0.17.1's numpy computes it
    (musl 1.1's expf, from FreeBSD: ``np.exp`` of float32 there, what ``numerics.exp`` uses below SMALL elements):
    k = (int)(x / ln 2 + 1/2 sign) for |x| > 1.5 ln 2, +-1 above 0.5 ln 2, else 0; hi = x - k ln2hi, lo = k ln2lo,
    x' = hi - lo; c = x' - x'^2 (P1 + x'^2 P2); y = 1 + ((x' c / (2 - c) - lo) + hi); scalbnf(y, k) (one extra
    step of 2^127 or 2^-126 outside [-126, 127]); |x| <= 2^-14: 1 + x; NaN: x; x >= 88.72: inf; x <= -103.97: 0.
    Every step one float32 rounding, in the C code's order (no FMA).  Uses $lh $lm $lf $lhi $llo $lc $lk."""
    f = "(local.get $%s)" % src
    one, two = _splat(1.0), _splat(2.0)
    return [
        "(local.set $lh (v128.and %s %s))" % (f, _i32x4(0x7FFFFFFF)),                       # |x|'s bits
        "(local.set $lm (i32x4.shr_s %s (i32.const 31)))" % f,                               # sign: all ones
        # k = (int)(invln2 * x + half[sign]) (truncation), then +-1 or 0 in the smaller ranges; as a float
        "(local.set $lf (f32x4.convert_i32x4_s (i32x4.trunc_sat_f32x4_s (f32x4.add (f32x4.mul %s %s)"
        " (v128.bitselect %s %s (local.get $lm))))))" % (f, _splat(_f32_of_bits(0x3FB8AA3B)), _splat(-0.5),
                                                          _splat(0.5)),
        "(local.set $lf (v128.bitselect (local.get $lf) (v128.bitselect %s %s (local.get $lm))"
        " (i32x4.gt_s (local.get $lh) %s)))" % (_splat(-1.0), one, _i32x4(0x3F851592)),
        "(local.set $lf (v128.bitselect (local.get $lf) (v128.const i32x4 0 0 0 0)"
        " (i32x4.gt_s (local.get $lh) %s)))" % _i32x4(0x3EB17218),
        # hi = x - k ln2hi; lo = k ln2lo; x' = hi - lo   (k = 0: hi = x, lo = 0, x' = x)
        "(local.set $lhi (f32x4.sub %s (f32x4.mul (local.get $lf) %s)))" % (f, _splat(_f32_of_bits(0x3F317200))),
        "(local.set $llo (f32x4.mul (local.get $lf) %s))" % _splat(_f32_of_bits(0x35BFBE8E)),
        "(local.set $lc (f32x4.sub (local.get $lhi) (local.get $llo)))",
        # xx = x'^2 (in $%s); c = x' - xx (P1 + xx P2) (in $lk)
        "(local.set $%s (f32x4.mul (local.get $lc) (local.get $lc)))" % dst,
        "(local.set $lk (f32x4.sub (local.get $lc) (f32x4.mul (local.get $%s) (f32x4.add %s (f32x4.mul (local.get $%s)"
        " %s)))))" % (dst, _splat(_f32_of_bits(0x3E2AAA8F)), dst, _splat(_f32_of_bits(0xBB355215))),
        # y = 1 + ((x' c / (2 - c) - lo) + hi)
        "(local.set $%s (f32x4.add %s (f32x4.add (f32x4.sub (f32x4.div (f32x4.mul (local.get $lc) (local.get $lk))"
        " (f32x4.sub %s (local.get $lk))) (local.get $llo)) (local.get $lhi))))" % (dst, one, two),
        # scalbnf(y, k): k > 127: y 2^127, k - 127; k < -126: y 2^-126, k + 126; then y * 2^k
        "(local.set $lk (i32x4.trunc_sat_f32x4_s (local.get $lf)))",
        "(local.set $lc (i32x4.gt_s (local.get $lk) %s))" % _i32x4(127),
        "(local.set $lhi (i32x4.lt_s (local.get $lk) %s))" % _i32x4(-126),
        "(local.set $%s (v128.bitselect (f32x4.mul (local.get $%s) %s) (v128.bitselect (f32x4.mul (local.get $%s) %s)"
        " (local.get $%s) (local.get $lhi)) (local.get $lc)))" % (dst, dst, _splat(2.0 ** 127), dst, _splat(2.0 ** -126),
                                                                 dst),
        "(local.set $lk (v128.bitselect (i32x4.sub (local.get $lk) %s) (v128.bitselect (i32x4.add (local.get $lk) %s)"
        " (local.get $lk) (local.get $lhi)) (local.get $lc)))" % (_i32x4(127), _i32x4(126)),
        "(local.set $%s (f32x4.mul (local.get $%s) (i32x4.shl (i32x4.add (local.get $lk) %s) (i32.const 23))))"
        % (dst, dst, _i32x4(127)),
        # the C code's early returns, last one first: |x| <= 2^-14: 1 + x; x <= -103.97: 0; x >= 88.72: inf; NaN: x
        "(local.set $%s (v128.bitselect (f32x4.add %s %s) (local.get $%s) (i32x4.le_s (local.get $lh) %s)))"
        % (dst, one, f, dst, _i32x4(0x39000000)),
        "(local.set $%s (v128.andnot (local.get $%s) (v128.and (local.get $lm) (i32x4.ge_s (local.get $lh) %s))))"
        % (dst, dst, _i32x4(0x42CFF1B5)),
        "(local.set $%s (v128.bitselect %s (local.get $%s) (v128.andnot (i32x4.ge_s (local.get $lh) %s) (local.get $lm))))"
        % (dst, _i32x4(0x7F800000), dst, _i32x4(0x42B17218)),
        "(local.set $%s (v128.bitselect %s (local.get $%s) (i32x4.gt_s (local.get $lh) %s)))"
        % (dst, f, dst, _i32x4(0x7F800000)),
    ]


_MAP_LOCALS = ("v", "y", "ek", "er", "ep", "t", "z", "a", "lh", "lm", "lf", "lhi", "llo", "lc", "lk")  # the v128
#                                            locals of a map body (and of _exp4, _expf_libm4)


def _second(line: str) -> str:
    """A body line for the second vector of an iteration: its locals renamed $v -> $v2, ...."""
    return re.sub(r"\$(%s)\b" % "|".join(_MAP_LOCALS), lambda m: "$" + m.group(1) + "2", line)


def _pair_loop(pad: str, labels: tuple, src: str, dst: str, loads: tuple, body: list, pair: bool = True) -> list:
    """``(block (loop ...))`` over src up to $end, two vectors an iteration: ``loads`` set $v / $v2 from ``src``,
    ``body`` (for $v, repeated for $v2) leaves $y / $y2, stored at ``dst``; both pointers then move 32 bytes.
    ``pair=False``: one vector an iteration ($v -> $y, 16 bytes; the body's code once: a smaller module)."""
    done, again = labels
    L = [pad + '(block %s (loop %s' % (done, again),  # noqa: N806
         pad + '  (br_if %s (i32.ge_u (local.get %s) (local.get $end)))' % (done, src),
         pad + '  (local.set $v %s)' % loads[0]]
    if pair:
        L.append(pad + '  (local.set $v2 %s)' % loads[1])
    for line in body:
        L += [pad + "  " + line] + ([pad + "  " + _second(line)] if pair else [])
    step = 32 if pair else 16
    L.append(pad + '  (v128.store (local.get %s) (local.get $y))' % dst)
    if pair:
        L.append(pad + '  (v128.store offset=16 (local.get %s) (local.get $y2))' % dst)
    return L + [pad + '  (local.set %s (i32.add (local.get %s) (i32.const %d)))' % (src, src, step),
                pad + '  (local.set %s (i32.add (local.get %s) (i32.const %d)))' % (dst, dst, step),
                pad + '  (br %s)))' % again]


def _map_func(name: str, body: list) -> list:
    """(func name (src dst n)): for every 4 floats v of src, body (v -> local $y), stored at dst; two independent
    vectors per iteration (their dependency chains overlap: GELU ~20% faster in V8 than one at a time).  Runs over
    ceil(n / 8) * 8 floats: the caller leaves room for the last partial pair of vectors (it is not copied back)."""
    decl = " ".join("(local $%s v128) (local $%s2 v128)" % (v, v) for v in _MAP_LOCALS)
    L = ['  (func (export "%s") (param $src i32) (param $dst i32) (param $n i32)' % name,  # noqa: N806
         '    (local $end i32) ' + decl,
         '    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))']
    L += _pair_loop("    ", ("$done", "$L"), "$src", "$dst",
                    ("(v128.load (local.get $src))", "(v128.load offset=16 (local.get $src))"), body)
    return L + ['  )']


def _gelu_body(c) -> list:
    """layers.gelu: z = |x / sqrt 2|; t = 1 / (1 + 0.5 z); acc = erfc poly(t) - z^2; e = exp(acc) t (erfc);
    half = e * 0.5; phi = where(x >= 0, 1 - half, half); phi * x."""
    one = _splat(1.0)
    half = _splat(0.5)
    out = ["(local.set $z (f32x4.abs (f32x4.mul (local.get $v) %s)))" % _splat(c["inv_sqrt2"]),
           "(local.set $t (f32x4.div %s (f32x4.add %s (f32x4.mul %s (local.get $z)))))" % (one, one, half),
           "(local.set $a %s)" % _splat(c["erfc_poly"][0])]
    for coef in c["erfc_poly"][1:]:  # acc *= t; acc += c
        out.append("(local.set $a (f32x4.add (f32x4.mul (local.get $a) (local.get $t)) %s))" % _splat(coef))
    out.append("(local.set $a (f32x4.sub (local.get $a) (f32x4.mul (local.get $z) (local.get $z))))")
    out += _exp4("a", "a", c)
    out.append("(local.set $a (f32x4.mul (f32x4.mul (local.get $a) (local.get $t)) %s))" % half)  # erfc / 2
    out.append("(local.set $y (f32x4.mul (v128.bitselect (f32x4.sub %s (local.get $a)) (local.get $a)"
               " (f32x4.ge (local.get $v) (v128.const i32x4 0 0 0 0))) (local.get $v)))" % one)
    return out


def _silu_body(c) -> list:
    """layers.silu: e = exp(-|x|); sig = where(x >= 0, 1, e) / (1 + e); x * sig."""
    one = _splat(1.0)
    out = ["(local.set $z (f32x4.neg (f32x4.abs (local.get $v))))"]
    out += _exp4("z", "a", c)
    out.append("(local.set $y (f32x4.mul (local.get $v) (f32x4.div (v128.bitselect %s (local.get $a)"
               " (f32x4.ge (local.get $v) (v128.const i32x4 0 0 0 0))) (f32x4.add %s (local.get $a)))))" % (one, one))
    return out


def _psum_func() -> list:
    """numpy's float32 pairwise sum (add.reduce over a contiguous row, PW_BLOCKSIZE 128): n < 8 in order from 0;
    up to 128: eight accumulators (two f32x4) seeded with the first 8, combined ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)),
    then the tail in order; longer: split at n/2 rounded down to a multiple of 8, left + right."""
    lane = "(f32x4.extract_lane %d (local.get $%s))"
    pair = "(f32.add %s %s)"
    quad = lambda v: pair % (pair % (lane % (0, v), lane % (1, v)), pair % (lane % (2, v), lane % (3, v)))  # noqa: E731
    return [
        '  (func $psum (param $p i32) (param $n i32) (result f32)',
        '    (local $i i32) (local $end i32) (local $res f32) (local $a v128) (local $b v128) (local $n2 i32)',
        '    (if (i32.lt_u (local.get $n) (i32.const 8)) (then',
        '      (local.set $res (f32.const 0))',
        '      (local.set $i (i32.const 0))',
        '      (block $d0 (loop $l0',
        '        (br_if $d0 (i32.ge_u (local.get $i) (local.get $n)))',
        '        (local.set $res (f32.add (local.get $res) (f32.load (i32.add (local.get $p)'
        ' (i32.shl (local.get $i) (i32.const 2))))))',
        '        (local.set $i (i32.add (local.get $i) (i32.const 1)))',
        '        (br $l0)))',
        '      (return (local.get $res))))',
        '    (if (i32.gt_u (local.get $n) (i32.const 128)) (then',
        '      (local.set $n2 (i32.and (i32.shr_u (local.get $n) (i32.const 1)) (i32.const -8)))',
        '      (return (f32.add (call $psum (local.get $p) (local.get $n2))',
        '                       (call $psum (i32.add (local.get $p) (i32.shl (local.get $n2) (i32.const 2)))'
        ' (i32.sub (local.get $n) (local.get $n2)))))))',
        '    (local.set $a (v128.load (local.get $p)))',
        '    (local.set $b (v128.load offset=16 (local.get $p)))',
        '    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))',
        '    (local.set $i (i32.add (local.get $p) (i32.const 32)))',
        '    (block $d1 (loop $l1',
        '      (br_if $d1 (i32.ge_u (local.get $i) (local.get $end)))',
        '      (local.set $a (f32x4.add (local.get $a) (v128.load (local.get $i))))',
        '      (local.set $b (f32x4.add (local.get $b) (v128.load offset=16 (local.get $i))))',
        '      (local.set $i (i32.add (local.get $i) (i32.const 32)))',
        '      (br $l1)))',
        '    (local.set $res %s)' % pair % (quad("a"), quad("b")),
        '    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))',
        '    (block $d2 (loop $l2',
        '      (br_if $d2 (i32.ge_u (local.get $i) (local.get $end)))',
        '      (local.set $res (f32.add (local.get $res) (f32.load (local.get $i))))',
        '      (local.set $i (i32.add (local.get $i) (i32.const 4)))',
        '      (br $l2)))',
        '    (local.get $res)',
        '  )',
    ]


def _softmax_func(c, name: str = "softmax", exp_body: Optional[list] = None) -> list:
    """attention.softmax over rows of n floats: m = row max; e = exp(l - m); e / (0 + pairwise sum of e).
    src and dst are separate; each row is processed in whole vectors (the exponentials two at a time: up to 7 floats
    past its end, overwritten by the next row or falling into the room the caller leaves after dst; one at a time
    with ``exp_body``).
    ``exp_body`` ($v -> $y): numerics.exp's polynomial (default), or ``_expf_libm4`` (``softmax_small``: np.exp's
    bits, what the numpy code uses below numerics.SMALL elements)."""
    decl = " ".join("(local $%s v128) (local $%s2 v128)" % (v, v) for v in _MAP_LOCALS)
    L = ['  (func (export "%s") (param $src i32) (param $dst i32) (param $rows i32) (param $n i32)' % name,  # noqa: N806
         '    (local $nb i32) (local $s i32) (local $d i32) (local $end i32) (local $vend i32) (local $m f32)'
         ' (local $sum f32) (local $mv v128) ' + decl,
         '    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))',
         '    (block $rdone (loop $R',
         '      (br_if $rdone (i32.eqz (local.get $rows)))',
         '      (local.set $end (i32.add (local.get $src) (local.get $nb)))',
         '      (local.set $vend (i32.add (local.get $src) (i32.and (local.get $nb) (i32.const -16))))',
         # the row max: whole vectors, then lanes, then the tail (max is exact in any order; NaN propagates)
         '      (local.set $mv (v128.load32_splat (local.get $src)))',
         '      (local.set $s (local.get $src))',
         '      (block $md (loop $ml',
         '        (br_if $md (i32.ge_u (local.get $s) (local.get $vend)))',
         '        (local.set $mv (f32x4.max (local.get $mv) (v128.load (local.get $s))))',
         '        (local.set $s (i32.add (local.get $s) (i32.const 16)))',
         '        (br $ml)))',
         '      (local.set $m (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mv)) (f32x4.extract_lane 1'
         ' (local.get $mv))) (f32.max (f32x4.extract_lane 2 (local.get $mv)) (f32x4.extract_lane 3 (local.get $mv)))))',
         '      (block $td (loop $tl',
         '        (br_if $td (i32.ge_u (local.get $s) (local.get $end)))',
         '        (local.set $m (f32.max (local.get $m) (f32.load (local.get $s))))',
         '        (local.set $s (i32.add (local.get $s) (i32.const 4)))',
         '        (br $tl)))',
         '      (local.set $mv (f32x4.splat (local.get $m)))',
         # e = exp(l - m) into dst
         '      (local.set $s (local.get $src))',
         '      (local.set $d (local.get $dst))']
    L += _pair_loop("      ", ("$ed", "$el"), "$s", "$d", (  # two vectors per iteration, as in _map_func (the small
        "(f32x4.sub (v128.load (local.get $s)) (local.get $mv))",  # softmax's rows are short: one, and a smaller module)
        "(f32x4.sub (v128.load offset=16 (local.get $s)) (local.get $mv))"), exp_body or _exp4("v", "y", c),
        pair=exp_body is None)
    L += [  # e /= (0 + pairwise sum)
          '      (local.set $mv (f32x4.splat (f32.add (f32.const 0) (call $psum (local.get $dst) (local.get $n)))))',
          '      (local.set $d (local.get $dst))',
          '      (local.set $end (i32.add (local.get $dst) (local.get $nb)))',
          '      (block $dd (loop $dl',
          '        (br_if $dd (i32.ge_u (local.get $d) (local.get $end)))',
          '        (v128.store (local.get $d) (f32x4.div (v128.load (local.get $d)) (local.get $mv)))',
          '        (local.set $d (i32.add (local.get $d) (i32.const 16)))',
          '        (br $dl)))',
          '      (local.set $src (i32.add (local.get $src) (local.get $nb)))',
          '      (local.set $dst (i32.add (local.get $dst) (local.get $nb)))',
          '      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))',
          '      (br $R)))',
          '  )']
    return L


def _layer_norm_func() -> list:
    """layers.layer_norm over rows of n floats (weight w, bias b: n floats each; eps an f32): mean = (0 + pairwise
    sum) / n; c = x - mean (into dst); var = (0 + sum of c*c) / n with einsum's order (sequential over the first
    n - n % 8 terms, then the last n % 8 from the end back: numpy's unrolled sum_of_products loop without SSE);
    inv = 1 / sqrt(var + eps); y = c * inv * w + b (three roundings, as the three numpy passes).  Whole vectors,
    then the tail one float at a time: nothing is read or written past a row."""
    def vec_then_tail(pad, labels, ptr, vend, end, vec, tail, step_ptrs):
        vd, vl, td, tl = labels
        out = [pad + '(block %s (loop %s' % (vd, vl),
               pad + '  (br_if %s (i32.ge_u (local.get %s) (local.get %s)))' % (vd, ptr, vend),
               pad + '  ' + vec]
        out += [pad + '  (local.set %s (i32.add (local.get %s) (i32.const 16)))' % (q, q) for q in step_ptrs]
        out += [pad + '  (br %s)))' % vl,
                pad + '(block %s (loop %s' % (td, tl),
                pad + '  (br_if %s (i32.ge_u (local.get %s) (local.get %s)))' % (td, ptr, end),
                pad + '  ' + tail]
        out += [pad + '  (local.set %s (i32.add (local.get %s) (i32.const 4)))' % (q, q) for q in step_ptrs]
        return out + [pad + '  (br %s)))' % tl]

    L = ['  (func (export "layer_norm") (param $src i32) (param $dst i32) (param $rows i32) (param $n i32)'  # noqa: N806
         ' (param $w i32) (param $b i32) (param $eps f32)',
         '    (local $nb i32) (local $s i32) (local $d i32) (local $wp i32) (local $bp i32) (local $vend i32)'
         ' (local $end i32) (local $dn f32) (local $mean f32) (local $acc f32) (local $x f32) (local $inv f32)'
         ' (local $mv v128) (local $iv v128)',
         '    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))',
         '    (local.set $dn (f32.convert_i32_u (local.get $n)))',
         '    (block $rdone (loop $R',
         '      (br_if $rdone (i32.eqz (local.get $rows)))',
         # mean = (0 + pairwise sum) / n
         '      (local.set $mean (f32.div (f32.add (f32.const 0) (call $psum (local.get $src) (local.get $n)))'
         ' (local.get $dn)))',
         '      (local.set $mv (f32x4.splat (local.get $mean)))',
         '      (local.set $s (local.get $src))',
         '      (local.set $d (local.get $dst))',
         '      (local.set $end (i32.add (local.get $src) (local.get $nb)))',
         '      (local.set $vend (i32.add (local.get $src) (i32.and (local.get $nb) (i32.const -16))))']
    L += vec_then_tail('      ', ('$cd', '$cl', '$ctd', '$ctl'), '$s', '$vend', '$end',
                       '(v128.store (local.get $d) (f32x4.sub (v128.load (local.get $s)) (local.get $mv)))',
                       '(f32.store (local.get $d) (f32.sub (f32.load (local.get $s)) (local.get $mean)))',
                       ('$s', '$d'))
    L += [  # var: sequential over the first n - n % 8 centred values, then the rest from the last one back
          '      (local.set $acc (f32.const 0))',
          '      (local.set $d (local.get $dst))',
          '      (local.set $vend (i32.add (local.get $dst) (i32.and (local.get $nb) (i32.const -32))))',
          '      (block $qd (loop $ql',
          '        (br_if $qd (i32.ge_u (local.get $d) (local.get $vend)))',
          '        (local.set $x (f32.load (local.get $d)))',
          '        (local.set $acc (f32.add (local.get $acc) (f32.mul (local.get $x) (local.get $x))))',
          '        (local.set $d (i32.add (local.get $d) (i32.const 4)))',
          '        (br $ql)))',
          '      (local.set $d (i32.add (local.get $dst) (local.get $nb)))',
          '      (block $rd (loop $rl',
          '        (br_if $rd (i32.le_u (local.get $d) (local.get $vend)))',
          '        (local.set $d (i32.sub (local.get $d) (i32.const 4)))',
          '        (local.set $x (f32.load (local.get $d)))',
          '        (local.set $acc (f32.add (local.get $acc) (f32.mul (local.get $x) (local.get $x))))',
          '        (br $rl)))',
          # inv = 1 / sqrt((0 + acc) / n + eps)
          '      (local.set $inv (f32.div (f32.const 1) (f32.sqrt (f32.add (f32.div (f32.add (f32.const 0)'
          ' (local.get $acc)) (local.get $dn)) (local.get $eps)))))',
          '      (local.set $iv (f32x4.splat (local.get $inv)))',
          '      (local.set $d (local.get $dst))',
          '      (local.set $wp (local.get $w))',
          '      (local.set $bp (local.get $b))',
          '      (local.set $end (i32.add (local.get $dst) (local.get $nb)))',
          '      (local.set $vend (i32.add (local.get $dst) (i32.and (local.get $nb) (i32.const -16))))']
    L += vec_then_tail('      ', ('$yd', '$yl', '$ytd', '$ytl'), '$d', '$vend', '$end',
                       '(v128.store (local.get $d) (f32x4.add (f32x4.mul (f32x4.mul (v128.load (local.get $d))'
                       ' (local.get $iv)) (v128.load (local.get $wp))) (v128.load (local.get $bp))))',
                       '(f32.store (local.get $d) (f32.add (f32.mul (f32.mul (f32.load (local.get $d))'
                       ' (local.get $inv)) (f32.load (local.get $wp))) (f32.load (local.get $bp))))',
                       ('$d', '$wp', '$bp'))
    L += ['      (local.set $src (i32.add (local.get $src) (local.get $nb)))',
          '      (local.set $dst (i32.add (local.get $dst) (local.get $nb)))',
          '      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))',
          '      (br $R)))',
          '  )']
    return L


def elementwise_funcs() -> list:
    """The elementwise functions of the module (lines): vexp, gelu, silu (src, dst, n), softmax and softmax_small
    (src, dst, rows, n) and layer_norm (src, dst, rows, n, w, b, eps), with the numpy-order pairwise sum $psum."""
    c = _core_constants()
    L = ['  ;; Elementwise float32 kernels, numpy-exact: each repeats pyapp.core\'s numpy passes in the same order']  # noqa: N806
    L.append('  ;; (numerics.exp: Cody-Waite + Cephes expf + 2^k from exponent bits; no FMA).  src/dst byte offsets.')
    L += _map_func("vexp", _exp4("v", "y", c))
    L += _map_func("gelu", _gelu_body(c))
    L += _map_func("silu", _silu_body(c))
    L += _psum_func()
    L += _softmax_func(c)
    L += _softmax_func(c, "softmax_small", _expf_libm4("v", "y"))
    L += _layer_norm_func()
    return L


def _memory_line(shared: bool) -> str:
    """The module's memory: exported (one thread), or imported shared with a maximum (gemm_threads.py)."""
    if shared:
        return '  (import "env" "memory" (memory 1 %d shared))' % SHARED_MAX_PAGES
    return '  (memory (export "memory") 1)'


def assemble(text: str, wat2wasm: str, threads: bool = False, relaxed: bool = False) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "gemm.wat", Path(tmp) / "gemm.wasm"
        src.write_text(text)
        flags = (["--enable-threads"] if threads else []) + (["--enable-relaxed-simd"] if relaxed else [])
        subprocess.run([wat2wasm, str(src), "-o", str(out)] + flags, check=True)
        return out.read_bytes()


def _b64_constant(name: str, wasm: bytes) -> str:
    b64 = base64.b64encode(wasm).decode("ascii")
    lines = [b64[i:i + 100] for i in range(0, len(b64), 100)]
    return name + " = (\n" + "".join('    "%s"\n' % s for s in lines) + ")\n"


def python_module(wasm: bytes, shared_wasm: bytes = b"", relaxed: bytes = b"", relaxed_shared: bytes = b"") -> str:
    head = ('"""The WebAssembly SIMD GEMM kernel: generated by scripts/build_gemm_wasm.py from scripts/gemm_simd.wat\n'
            'and scripts/gemm_relaxed.wat (do not edit)."""\n\nfrom __future__ import annotations\n\n')
    out = head + _b64_constant("WASM_BASE64", wasm)
    if shared_wasm:  # the same text on an imported shared memory (wat(shared=True)): pyapp/browser/gemm_threads.py
        out += "\n# the same kernel on an imported shared memory (env.memory), for the two-thread split\n"
        out += _b64_constant("WASM_SHARED_BASE64", shared_wasm)
    if relaxed:  # wat(relaxed=True): fused multiply-adds, where the engine has relaxed SIMD (pyapp/browser/wasm_gemm.py)
        out += "\n# the relaxed-SIMD build (f32x4.relaxed_madd in 6 x 8 tiles), one thread and shared\n"
        out += _b64_constant("WASM_RELAXED_BASE64", relaxed)
        out += _b64_constant("WASM_RELAXED_SHARED_BASE64", relaxed_shared)
    return out


def _find_wat2wasm(given: str) -> str:
    for cand in (given, str(ROOT / "node_modules" / ".bin" / "wat2wasm"), "/tmp/node_modules/.bin/wat2wasm",
                 shutil.which("wat2wasm") or ""):
        if cand and Path(cand).exists():
            return cand
    sys.exit("wat2wasm not found: npm ci (package.json pins %s) or pass --wat2wasm PATH" % WABT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the .wat or the .py module is out of date")
    ap.add_argument("--wat2wasm", default="", help="path of wabt's wat2wasm")
    args = ap.parse_args()
    text, relaxed = wat(), wat(relaxed=True)
    tool = _find_wat2wasm(args.wat2wasm)
    module = python_module(assemble(text, tool), assemble(wat(shared=True), tool, threads=True),
                           assemble(relaxed, tool, relaxed=True),
                           assemble(wat(shared=True, relaxed=True), tool, threads=True, relaxed=True))
    if args.check:
        stale = [str(p.relative_to(ROOT)) for p, want in ((WAT, text), (RELAXED_WAT, relaxed), (PY, module))
                 if not p.exists() or p.read_text() != want]
        if stale:
            print("out of date:", ", ".join(stale))
            return 1
        return 0
    WAT.write_text(text)
    RELAXED_WAT.write_text(relaxed)
    PY.write_text(module)
    print("wrote %s, %s and %s" % (WAT.relative_to(ROOT), RELAXED_WAT.relative_to(ROOT), PY.relative_to(ROOT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
