"""Build the WebAssembly SIMD GEMM kernel used by the browser's ``matmul_t`` (pyapp/browser/wasm_gemm.py).

    python scripts/build_gemm_wasm.py            # write scripts/gemm_simd.wat and pyapp/browser/gemm_wasm.py
    python scripts/build_gemm_wasm.py --check    # exit 1 if either file is out of date

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
"""

from __future__ import annotations

import argparse
import base64
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WAT = ROOT / "scripts" / "gemm_simd.wat"
PY = ROOT / "pyapp" / "browser" / "gemm_wasm.py"
ROWS = 4  # rows per register tile: 4 x 8 outputs = 8 v128 sums (6 rows measured no faster in V8)
WABT = "wabt@1.0.39"


def wat(R: int = ROWS) -> str:  # noqa: N803 - R as in the tile
    """The kernel's text (module exporting ``memory`` and ``gemm(x, w, c, n, k, m)``, byte offsets)."""
    L = []  # noqa: N806
    a = L.append
    a('(module')
    a('  ;; C (n, m) = X (n, k) @ W (k, m), float32, row-major X and C; W packed in panels of 8 columns:')
    a('  ;; panel j holds W[:, 8j:8j+8] as k rows of 8 contiguous floats (32 bytes).  Requires m % 8 == 0.')
    a('  ;; Each output element is one float32 sum over p = 0..k-1 in order (f32x4.mul then f32x4.add).')
    a('  (memory (export "memory") 1)')
    a('  (func $gemm (export "gemm") (param $x i32) (param $w i32) (param $c i32) (param $n i32) (param $k i32) (param $m i32)')
    a('    (local $kb i32) (local $mb i32) (local $jb i32) (local $jend i32) (local $q i32) (local $qend i32)')
    a('    (local $i i32) (local $xr i32) (local $cr i32) (local $wp i32) (local $b0 v128) (local $b1 v128) (local $s v128)')
    for r in range(R):
        a('    (local $x%d i32) (local $c%d0 v128) (local $c%d1 v128)' % (r, r, r))
    a('    (local.set $kb (i32.shl (local.get $k) (i32.const 2)))')
    a('    (local.set $mb (i32.shl (local.get $m) (i32.const 2)))')
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
        a('          (local.set $c%d0 (f32x4.add (local.get $c%d0) (f32x4.mul (local.get $s) (local.get $b0))))' % (r, r))
        a('          (local.set $c%d1 (f32x4.add (local.get $c%d1) (f32x4.mul (local.get $s) (local.get $b1))))' % (r, r))
        a('          (local.set $x%d (i32.add (local.get $x%d) (i32.const 4)))' % (r, r))
    a('          (local.set $q (i32.add (local.get $q) (i32.const 32)))')
    a('          (br_if $P (i32.ne (local.get $q) (local.get $qend))))')
    for r in range(R):
        a('        (v128.store (local.get $cr) (local.get $c%d0))' % r)
        a('        (v128.store offset=16 (local.get $cr) (local.get $c%d1))' % r)
        a('        (local.set $cr (i32.add (local.get $cr) (local.get $mb)))')
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
    a('          (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $s) (v128.load (local.get $q)))))')
    a('          (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $q)))))')
    a('          (local.set $x0 (i32.add (local.get $x0) (i32.const 4)))')
    a('          (local.set $q (i32.add (local.get $q) (i32.const 32)))')
    a('          (br_if $P1 (i32.ne (local.get $q) (local.get $qend))))')
    a('        (v128.store (local.get $cr) (local.get $c00))')
    a('        (v128.store offset=16 (local.get $cr) (local.get $c01))')
    a('        (local.set $cr (i32.add (local.get $cr) (local.get $mb)))')
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
    a(')')
    return "\n".join(L) + "\n"



def assemble(text: str, wat2wasm: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "gemm.wat", Path(tmp) / "gemm.wasm"
        src.write_text(text)
        subprocess.run([wat2wasm, str(src), "-o", str(out)], check=True)
        return out.read_bytes()


def python_module(wasm: bytes) -> str:
    b64 = base64.b64encode(wasm).decode("ascii")
    lines = [b64[i:i + 100] for i in range(0, len(b64), 100)]
    head = ('"""The WebAssembly SIMD GEMM kernel: generated by scripts/build_gemm_wasm.py from scripts/gemm_simd.wat\n'
            '(do not edit)."""\n\nfrom __future__ import annotations\n\n')
    return head + "WASM_BASE64 = (\n" + "".join('    "%s"\n' % s for s in lines) + ")\n"


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
    text = wat()
    module = python_module(assemble(text, _find_wat2wasm(args.wat2wasm)))
    if args.check:
        stale = [str(p.relative_to(ROOT)) for p, want in ((WAT, text), (PY, module))
                 if not p.exists() or p.read_text() != want]
        if stale:
            print("out of date:", ", ".join(stale))
            return 1
        return 0
    WAT.write_text(text)
    PY.write_text(module)
    print("wrote %s and %s" % (WAT.relative_to(ROOT), PY.relative_to(ROOT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
