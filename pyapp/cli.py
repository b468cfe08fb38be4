"""Command line: ``python -m pyapp models | tokenize | attention | next | render`` (CPython; reads models/).

    python -m pyapp models
    python -m pyapp tokenize [--model ID] [--jsonl] TEXT|-
    python -m pyapp attention [--model ID] [--layer N | --all-layers] [--temperature T] [--causal]
                              [--jsonl] TEXT|-
    python -m pyapp next [--model ID] [--top-k K] [--top-p P] [--temperature T] [--jsonl] TEXT|-
    python -m pyapp render [--model ID] [--layer N] [--head H] [--temperature T] [--causal] [--width W]
                           [--scale S] [--pin ROW] [--arch A] [--d-model D --heads H --seed S]
                           --view overview|heads|step:K|math|architecture|model|lines|neuron|rollout|stats
                           --out FILE.png TEXT|-

``next`` (causal decoders: smollm2-135m) prints the K most probable tokens after the text with the
sampling distribution's probabilities (``core/sampling.py``: softmax(logits / T), top-k, then top-p, in
Hugging Face's order), best first.  For tokenize / attention / next, ``-`` reads one input per line from stdin and prints one JSON object per input
line; with ``--jsonl`` every input (line or TEXT) is a JSON string, so inputs may hold newlines.  render
draws one view of the page to a PNG (``pyapp.figures.figure``; ``-`` reads the whole of stdin as the text)
and prints "wrote FILE (W x H px)". Bad input exits with code 2 and one line on stderr: among it text that
is not valid UTF-8 (or holds a lone surrogate), a temperature outside T_FINITE_MIN..T_FINITE_MAX (where the
float32 softmax would overflow to NaN), a synthetic --d-model above MAX_SYNTHETIC_D_MODEL, running out of
memory and, for render, a missing Pillow. No NaN is ever printed: a non-finite attention is an error too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Iterator, List, Optional, Sequence

import numpy as np

from .app.prediction import Sampler, candidates
from .app.session import SYNTHETIC, SessionError
from .app.state import DEFAULT_MODEL, T_FINITE_MAX, T_FINITE_MIN, T_MAX, T_MIN
from .core.attention import check_temperature
from .core.catalogue import CatalogueError
from .core.encoder import WeightsMissing
from .core.files import LocalModel, default_models_dir, load_local_catalogue
from .core.weights import WeightFileError
from .raster import PillowMissing

DEFAULT_TOP_K = 5
# Synthetic models: the page offers d_model 8..384; the CLI goes further, to what draws in a few seconds and
# a few hundred MB (measured: d_model 2048 renders in 4 s with 370 MB; memory grows as d_model**2).
MAX_SYNTHETIC_D_MODEL = 2048
T_HELP = ("softmax temperature, %g..%g (default 1; the page's slider: %g..%g)"
          % (T_FINITE_MIN, T_FINITE_MAX, T_MIN, T_MAX))


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too by default)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="python -m pyapp", description="Multi-head self-attention of a real Transformer.")
    ap.add_argument("--models-dir", default=None, help="folder holding index.json (default: models/ "
                                                       "next to the pyapp package)")
    sub = ap.add_subparsers(dest="command", parser_class=Parser)
    sub.required = True
    sub.add_parser("models", help="list the model catalogue")

    def common(p):
        p.add_argument("text", help="the text, or - to read one input per line from stdin")
        p.add_argument("--model", default=DEFAULT_MODEL, help=f"model id (default {DEFAULT_MODEL})")
        p.add_argument("--jsonl", action="store_true", help="inputs are JSON strings (may hold newlines)")
        p.add_argument("--models-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    common(sub.add_parser("tokenize", help="print tokens, ids and offsets"))
    att = sub.add_parser("attention", help="print attention probabilities (heads x n x n) per layer")
    common(att)
    which = att.add_mutually_exclusive_group()
    which.add_argument("--layer", type=int, default=0, help="layer to show (default 0)")
    which.add_argument("--all-layers", action="store_true", help="every layer")
    att.add_argument("--temperature", type=float, default=1.0, help=T_HELP)
    att.add_argument("--causal", action="store_true", help="apply the causal (decoder) mask")

    nxt = sub.add_parser("next", help="print the most probable next tokens (causal decoders)")
    common(nxt)
    nxt.add_argument("--top-k", type=int, default=DEFAULT_TOP_K,
                     help=f"keep the K most probable tokens and print them (default {DEFAULT_TOP_K})")
    nxt.add_argument("--top-p", type=float, default=1.0,
                     help="then keep the fewest tokens whose probability reaches P, 0 < P <= 1 (default 1: all)")
    nxt.add_argument("--temperature", type=float, default=1.0,
                     help="sampling temperature: the logits are divided by T (default 1)")

    from .app.context import ARCH_DIAGRAMS
    from .figures import DEFAULT_WIDTH, VIEW_NAMES

    ren = sub.add_parser("render", help="draw one view of the page to a PNG")
    ren.add_argument("text", help="the text, or - to read it from stdin")
    ren.add_argument("--model", default=DEFAULT_MODEL,
                     help=f"model id, or deterministic / random (synthetic; default {DEFAULT_MODEL})")
    ren.add_argument("--models-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    ren.add_argument("--view", default="overview", help=f"one of: {VIEW_NAMES} (default overview)")
    ren.add_argument("--out", required=True, help="PNG file to write")
    ren.add_argument("--layer", type=int, default=0, help="layer to show (default 0)")
    ren.add_argument("--head", type=int, default=0, help="head to show (default 0)")
    ren.add_argument("--temperature", type=float, default=1.0, help=T_HELP)
    ren.add_argument("--causal", action="store_true", help="apply the causal (decoder) mask")
    ren.add_argument("--width", type=float, default=DEFAULT_WIDTH,
                     help=f"layout width in CSS pixels (default {DEFAULT_WIDTH:g})")
    ren.add_argument("--scale", type=float, default=1.0, help="device pixels per CSS pixel (default 1)")
    ren.add_argument("--pin", type=int, default=None, help="pin query row N (the neuron view's query token)")
    ren.add_argument("--arch", default="encoder", choices=ARCH_DIAGRAMS, help="Architecture diagram")
    ren.add_argument("--d-model", type=int, default=64,
                     help=f"synthetic models: d_model, 1..{MAX_SYNTHETIC_D_MODEL} (default 64)")
    ren.add_argument("--heads", type=int, default=4, help="synthetic models: heads (default 4)")
    ren.add_argument("--seed", type=int, default=0, help="random model: seed (default 0)")
    return ap


def inputs(text: str, jsonl: bool, stdin) -> Iterator[str]:
    lines = _stdin_lines(stdin) if text == "-" else iter([text])
    for n, line in enumerate(lines, 1):
        what = f"input {n}" if text == "-" else "TEXT"
        if not jsonl:
            yield check_text(line, what)
            continue
        try:
            value = json.loads(check_text(line, what))
        except ValueError as e:
            raise UsageError(f"{what} is not a JSON string: {e}") from None
        if not isinstance(value, str):
            raise UsageError(f"{what} is not a JSON string")
        yield check_text(value, what)


def _stdin_lines(stdin) -> Iterator[str]:
    try:
        for line in stdin:
            yield line.rstrip("\r\n")
    except UnicodeDecodeError as e:        # a strict stdin (a UTF-8 locale); C.UTF-8 gives surrogates instead
        raise UsageError(f"stdin is not valid UTF-8 text: byte 0x{e.object[e.start]:02x} "
                         f"({e.reason})") from None


def read_all(stdin) -> str:
    try:
        return check_text(stdin.read(), "stdin")
    except UnicodeDecodeError as e:
        raise UsageError(f"stdin is not valid UTF-8 text: byte 0x{e.object[e.start]:02x} "
                         f"({e.reason})") from None


def check_text(text: str, what: str) -> str:
    """``text`` if it is valid Unicode; UsageError for a lone surrogate (how Python hands over bytes that
    are not UTF-8 in argv or a C-locale stdin, U+DC80..U+DCFF, or a JSON "\\ud800")."""
    for i, c in enumerate(text):
        if "\ud800" <= c <= "\udfff":
            if "\udc80" <= c <= "\udcff":
                raise UsageError(f"{what} is not valid UTF-8 text: byte 0x{ord(c) - 0xdc00:02x} at character {i}")
            raise UsageError(f"{what} holds a lone UTF-16 surrogate U+{ord(c):04X} at character {i}, "
                             "which is not text")
    return text


def check_cli_temperature(t: float) -> float:
    """``t`` if the softmax stays finite at it (see state.T_FINITE_MIN); UsageError otherwise (NaN too)."""
    if not T_FINITE_MIN <= t <= T_FINITE_MAX:
        raise UsageError(f"--temperature must be between {T_FINITE_MIN:g} and {T_FINITE_MAX:g} (beyond, the "
                         f"softmax overflows; the page's slider is {T_MIN:g}..{T_MAX:g}), got {t:g}")
    return check_temperature(t)


def check_finite(probs: np.ndarray, t: float) -> None:
    """Never print a NaN as an answer: a softmax that overflowed for this model and text is an error."""
    if not np.all(np.isfinite(probs)):
        raise UsageError(f"the softmax overflows at --temperature {t:g} for this model and text: "
                         "use a temperature closer to 1")


def cmd_models(args, out) -> None:
    cat = load_local_catalogue(args.models_dir)
    rows = [(m.id, m.name, m.layers_x_heads, "built" if m.built else "not built") for m in cat]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        out.write("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] + "\n")


def open_model(args) -> LocalModel:
    cat = load_local_catalogue(args.models_dir)
    cat.get(args.model)  # unknown id -> CatalogueError
    return LocalModel(args.model, args.models_dir, catalogue=cat)


def cmd_tokenize(args, out, stdin) -> None:
    model = open_model(args)
    for text in inputs(args.text, args.jsonl, stdin):
        enc = model.tokenizer.encode(text)
        out.write(json.dumps({"text": text, "tokens": enc.tokens, "ids": enc.ids,
                              "offsets": [list(o) for o in enc.offsets]}, ensure_ascii=False) + "\n")
        out.flush()


def cmd_attention(args, out, stdin) -> None:
    t = check_cli_temperature(args.temperature)
    model = open_model(args)
    n_layers = model.entry.n_layers
    layers: List[int] = list(range(n_layers)) if args.all_layers else [args.layer]
    if not all(0 <= layer < n_layers for layer in layers):
        raise UsageError(f"--layer {args.layer} out of range: model {model.entry.id!r} has layers "
                         f"0..{n_layers - 1}")
    for text in inputs(args.text, args.jsonl, stdin):
        enc = model.tokenizer.encode(text, max_length=model.entry.max_positions)
        model.need(enc.ids, max(layers), ("qk",))
        probs = model.encoder.attentions(enc.ids, layers, t, args.causal)
        model.encoder.clear()
        for layer in layers:
            check_finite(probs[layer], t)
        doc = {"text": text, "tokens": enc.tokens,
               "layers": [{"layer": layer, "attention": probs[layer].tolist()} for layer in layers]}
        out.write(json.dumps(doc, ensure_ascii=False) + "\n")
        out.flush()


def check_sampling(args, vocab_size: int):
    """(T, top_k, top_p) if they make a finite sampling distribution; UsageError otherwise."""
    t = check_cli_temperature(args.temperature)
    if not 1 <= args.top_k <= vocab_size:
        raise UsageError(f"--top-k must be 1..{vocab_size} (the vocabulary), got {args.top_k}")
    if not 0.0 < args.top_p <= 1.0:  # NaN fails both comparisons
        raise UsageError(f"--top-p must be in (0, 1], got {args.top_p:g}")
    return t, args.top_k, args.top_p


def cmd_next(args, out, stdin) -> None:
    model = open_model(args)
    entry = model.entry
    if not entry.config.is_decoder:
        raise UsageError(f"model {entry.id!r} is an encoder ({entry.architecture}): it reads the whole text at "
                         "once and has no next-token head; use a causal decoder such as --model smollm2-135m")
    t, top_k, top_p = check_sampling(args, entry.vocab_size)
    tok = model.tokenizer
    for text in inputs(args.text, args.jsonl, stdin):
        enc = model.tokenizer.encode(text, max_length=entry.max_positions)
        model.need(enc.ids, next_token=True)
        logits = model.encoder.next_token_logits(enc.ids)  # (vocab,)
        pred = candidates(logits, lambda i: tok.decode([i]), tok.id_to_token, Sampler(t, top_k, top_p), top_k)
        check_finite(np.array([c.probability for c in pred.candidates]), t)
        doc = {"text": text, "tokens": enc.tokens, "temperature": t, "top_k": top_k, "top_p": top_p,
               "next": [{"id": c.id, "token": c.token, "text": c.text, "probability": c.probability,
                         "logit": c.logit} for c in pred.candidates]}
        out.write(json.dumps(doc, ensure_ascii=False) + "\n")
        out.flush()


def cmd_render(args, out, stdin) -> None:
    from .figures import figure
    from .raster import require_pillow

    require_pillow()  # before any work: one line saying how to get it
    t = check_cli_temperature(args.temperature)
    if args.model in SYNTHETIC and not 1 <= args.d_model <= MAX_SYNTHETIC_D_MODEL:
        raise UsageError(f"--d-model must be 1..{MAX_SYNTHETIC_D_MODEL}, got {args.d_model}")
    path = os.path.abspath(args.out)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise UsageError(f"--out {args.out} is a folder")
    if not os.path.isdir(folder):
        raise UsageError(f"--out {args.out}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"--out {args.out} is not writable")
    text = read_all(stdin) if args.text == "-" else check_text(args.text, "TEXT")
    fig = figure(text, view=args.view, model=args.model, layer=args.layer, head=args.head,
                 temperature=t, causal=args.causal, width=args.width, scale=args.scale,
                 pinned_row=args.pin, arch=args.arch, d_model=args.d_model, heads=args.heads, seed=args.seed,
                 models_dir=args.models_dir)
    check_finite(fig.context.trace.probs, t)
    try:
        fig.save(path)
    except OSError as e:
        raise UsageError(f"cannot write --out {args.out}: {e.strerror or e}") from None
    w, h = fig.size
    out.write(f"wrote {args.out} ({w} x {h} px)\n")


def main(argv: Optional[Sequence[str]] = None, out=None, stdin=None) -> int:
    out = out or sys.stdout
    stdin = stdin or sys.stdin
    try:
        args = build_parser().parse_args(argv)
        args.models_dir = args.models_dir or default_models_dir()
        if args.command == "models":
            cmd_models(args, out)
        elif args.command == "tokenize":
            cmd_tokenize(args, out, stdin)
        elif args.command == "render":
            cmd_render(args, out, stdin)
        elif args.command == "next":
            cmd_next(args, out, stdin)
        else:
            cmd_attention(args, out, stdin)
    except (UsageError, CatalogueError, WeightFileError, WeightsMissing, SessionError, ValueError,
            OSError, PillowMissing) as e:
        msg = str(e).replace("\n", " ")
        sys.stderr.write(f"python -m pyapp: error: {msg}\n")
        return 2
    except MemoryError as e:  # numpy's "Unable to allocate ..." (a synthetic model or a figure too large)
        msg = str(e).replace("\n", " ") or "out of memory"
        sys.stderr.write(f"python -m pyapp: error: not enough memory: {msg}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
