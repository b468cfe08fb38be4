// The second thread of the matrix products (pyapp/browser/gemm_threads.py): a plain-JavaScript Web Worker,
// started by the compute worker, no Pyodide. It receives the compiled kernel (a WebAssembly.Module of the
// shared build of scripts/build_gemm_wasm.py) and the SHARED WebAssembly.Memory that the compute worker's
// kernel instance uses, instantiates the same kernel on it, then loops: it sleeps in Atomics.wait on the
// control block until a job is posted, runs the kernel on its half of the product, and says it is done.
//
// Control block: 16 Int32 slots at byte offset `ctl` of the shared memory (gemm_threads.py allocates it):
//   0 SEQ     job counter: the owner adds 1 (and notifies) after writing a job; the thread waits on it
//   1 STATE   0 idle, 1 posted, 2 running (claimed by the thread), 3 done, 4 failed
//   2 OP      1 gemm(x, w, c, n, k, m), 2 gemm_batch(x, w, c, h, n, k, m), 3 vexp / 4 gelu / 5 silu (src, dst, n),
//             6 softmax(src, dst, rows, n), 7 gemm_ld(x, w, c, n, k, m, ldc) (a column split)
//   3..9      the kernel call's arguments (byte offsets and sizes)
//   10 READY  1 once this thread waits for jobs
//   11 COUNT  jobs this thread has completed (read by the tests and the benchmark)
//   12 STOP   1: leave the loop (then SEQ is bumped to wake the thread)
//   13 SPIN   microseconds to poll SEQ after a job before sleeping in Atomics.wait (set by the owner)
// A job is claimed with compareExchange(STATE, posted -> running): the owner may take a job back the same way
// while it is still only posted (this thread descheduled), so exactly one of the two computes it.
"use strict";

var SEQ = 0, STATE = 1, OP = 2, ARGS = 3, READY = 10, COUNT = 11, STOP = 12, SPIN_US = 13;
var POSTED = 1, RUNNING = 2, DONE = 3, FAILED = 4;

function serve(exports, ctl) {
  var seen = Atomics.load(ctl, SEQ);
  Atomics.store(ctl, READY, 1);
  Atomics.notify(ctl, READY);
  for (;;) {
    // products come in bursts (Q, K, V; the FFN's two): poll for SPIN microseconds before sleeping, since a
    // wake-up from Atomics.wait costs more than a small product saves
    var until = performance.now() + ctl[SPIN_US] / 1000;
    while (Atomics.load(ctl, SEQ) === seen && performance.now() < until) { /* poll */ }
    Atomics.wait(ctl, SEQ, seen);
    var seq = Atomics.load(ctl, SEQ);
    if (seq === seen) continue;
    seen = seq;
    if (Atomics.load(ctl, STOP)) break;
    if (Atomics.compareExchange(ctl, STATE, POSTED, RUNNING) !== POSTED) continue;   // taken back by the owner
    Atomics.notify(ctl, STATE);                                                      // claimed: the owner waits
    var a = ctl.slice(ARGS, ARGS + 7);
    var state = DONE;
    try {
      var op = ctl[OP];
      if (op === 1) exports.gemm(a[0], a[1], a[2], a[3], a[4], a[5]);
      else if (op === 2) exports.gemm_batch(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
      else if (op === 3) exports.vexp(a[0], a[1], a[2]);
      else if (op === 4) exports.gelu(a[0], a[1], a[2]);
      else if (op === 5) exports.silu(a[0], a[1], a[2]);
      else if (op === 6) exports.softmax(a[0], a[1], a[2], a[3]);
      else if (op === 7) exports.gemm_ld(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
      else state = FAILED;
    } catch (err) {
      state = FAILED;
    }
    if (state === DONE) Atomics.add(ctl, COUNT, 1);
    Atomics.store(ctl, STATE, state);
    Atomics.notify(ctl, STATE);
  }
  Atomics.store(ctl, READY, 0);
  self.close();
}

self.onmessage = function (e) {
  var m = e.data || {};
  if (m.type !== "start") return;
  self.onmessage = null;
  var exports, ctl;
  try {
    var instance = new WebAssembly.Instance(m.module, {env: {memory: m.memory}});
    exports = instance.exports;
    ctl = new Int32Array(m.memory.buffer, m.ctl, 16);
  } catch (err) {
    self.postMessage({type: "error", message: String(err && err.message || err)});
    return;
  }
  self.postMessage({type: "ready"});
  serve(exports, ctl);
};
