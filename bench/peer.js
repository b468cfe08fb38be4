// Peer side of the issue-7 benchmark: transformers.js + onnxruntime-web (wasm) on the exported MiniLM, all local.
// window.BENCH (set by run_benchmark.py before the page loads): {texts: [..], threads, reps, warmup}.
// Publishes window.FIRST when the first heatmap is on the canvas, then window.runBench() -> timings (ms).
import { AutoModel, AutoTokenizer, env } from "./node_modules/@huggingface/transformers/dist/transformers.min.js";
import { drawHeatmap, median } from "./heatmap.js";

const cfg = Object.assign({ texts: ["The quick brown fox jumps over the lazy dog."], threads: 1, reps: 20, warmup: 3,
                            settleMs: 3000 },
                          window.BENCH || {});
const status = document.getElementById("status");
const canvas = document.getElementById("heatmap");

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = new URL("./.generated/", location.href).pathname;  // a path: 4.3.2 skips local files given as URLs
env.useBrowserCache = false;
env.useWasmCache = false;
env.backends.onnx.wasm.wasmPaths = new URL("./node_modules/onnxruntime-web/dist/", location.href).href;
env.backends.onnx.wasm.numThreads = cfg.threads;
env.backends.onnx.wasm.proxy = false;

const MARKS = [[performance.now(), "transformers.js imported"]];
const tokenizer = await AutoTokenizer.from_pretrained("minilm-onnx");
MARKS.push([performance.now(), "tokenizer loaded"]);
const model = await AutoModel.from_pretrained("minilm-onnx", { dtype: "fp32", device: "wasm" });
MARKS.push([performance.now(), "model loaded (ONNX session created)"]);
const N_LAYERS = 6;

function headAverage(t) {              // (1, heads, n, n) -> Float32Array (n*n)
  const [, h, n] = t.dims, d = t.data, out = new Float32Array(n * n);
  for (let k = 0; k < h; k++) for (let i = 0, o = k * n * n; i < n * n; i++) out[i] += d[o + i];
  for (let i = 0; i < n * n; i++) out[i] /= h;
  return out;
}

async function forward(text) {
  const enc = tokenizer(text);
  const out = await model(enc);
  return { n: enc.input_ids.dims[1], out };
}

// (a) one edit showing layer 0: tokenize + forward + head-averaged layer-0 matrix
async function editLayer0(text) { const { n, out } = await forward(text); return { n, avg: headAverage(out["attentions.0"]) }; }
// (b) one edit computing all six layers' attention probabilities (heads, n, n)
async function editAll(text) {
  const { n, out } = await forward(text);
  const layers = [];
  for (let l = 0; l < N_LAYERS; l++) layers.push(out["attentions." + l].data);
  return { n, layers };
}

const first = await editLayer0(cfg.texts[0]);
drawHeatmap(canvas, first.avg, first.n);
MARKS.push([performance.now(), "first heatmap drawn"]);
window.FIRST = { ms: performance.now(), n: first.n, crossOriginIsolated: self.crossOriginIsolated,
                 threads: env.backends.onnx.wasm.numThreads, marks: MARKS };
status.textContent = "first heatmap after " + window.FIRST.ms.toFixed(0) + " ms";

async function timeIt(fn, text) {
  for (let i = 0; i < cfg.warmup; i++) await fn(text);
  const ts = [];
  for (let i = 0; i < cfg.reps; i++) { const t0 = performance.now(); await fn(text); ts.push(performance.now() - t0); }
  return { median: median(ts), min: Math.min(...ts), max: Math.max(...ts) };
}

function toBase64(arrays) {        // the float32 attentions, for the parity check against HF in Python
  let s = "";
  for (const a of arrays) {
    const u8 = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

window.runBench = async () => {
  // settle: let the wasm engine tier up (Liftoff -> TurboFan) before anything is timed; same for ours
  const longest = cfg.texts[cfg.texts.length - 1];
  for (let i = 0, t0 = performance.now(); i < 3 || performance.now() - t0 < cfg.settleMs; i++) await editAll(longest);
  const rows = [];
  for (const text of cfg.texts) {
    const a = await timeIt(editLayer0, text);
    const b = await timeIt(editAll, text);
    const { n, layers } = await editAll(text);
    rows.push({ n, layer0: a, all: b, attentions: toBase64(layers) });
  }
  status.textContent = "done";
  return rows;
};
// diagnostics: where a peer edit's time goes (tokenizer vs the ONNX session itself)
window.peerParts = async (text, reps) => {
  const enc = tokenizer(text);
  const session = Object.values(model.sessions)[0];
  const feeds = {};
  for (const name of session.inputNames) feeds[name] = enc[name].ort_tensor ?? enc[name];
  const t = async (fn) => { const ts = []; for (let i = 0; i < reps; i++) { const t0 = performance.now(); await fn(); ts.push(performance.now() - t0); } return median(ts); };
  return { tokenize: await t(() => tokenizer(text)), session_run: await t(() => session.run(feeds)),
           model_call: await t(() => model(enc)), inputNames: session.inputNames };
};
window.PEER_READY = true;
