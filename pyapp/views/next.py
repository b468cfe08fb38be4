"""Next-token tab: what a causal decoder predicts after the last token, with the sampler's controls.

    h = norm_f(x_L)[last]                      the last token's state after every layer, normalised
    logits = E h                               tied LM head: one score per vocabulary entry (E = word table)
    p = softmax(logits / T), then top-k, top-p (renormalised)      what a sampler draws from

Data: ``ctx.prediction`` (``pyapp.app.prediction.Prediction``): the best candidates under the sampler, or
what is still loading (the LM head is the whole word table: fetched only when this tab opens).
Hit regions: a pill per sampler setting (action {"sample_t": T} / {"top_k": k} / {"top_p": p}) and a bar
per candidate (action {"text": text + token}: appends it, the page predicts again; keyboard: the page's
hotspot buttons, Enter).  An encoder has no next-token head: the view says why.
"""

from __future__ import annotations

from typing import Sequence

from ..app.context import ViewContext
from ..app.prediction import SAMPLE_T_CHOICES, TOP_K_CHOICES, TOP_P_CHOICES, Prediction
from ..app.tokens import visible
from ..draw.heatmap import short_label
from ..draw.scene import Scene, button, header, notice, text_width, wrap_text

TITLE = "Next token"
MARGIN = 12.0
BAR = "#1f6feb"
RAW = "#9aa3ad"
MAX_TEXT_TAIL = 60


def render(ctx: ViewContext, width: float) -> Scene:
    width = max(float(width), 320.0)
    inner = width - 2 * MARGIN
    scene = Scene(width, 100, label="Next-token prediction")
    pred = getattr(ctx, "prediction", None)
    if pred is None or not pred.decoder:
        return _encoder(scene, ctx, inner)
    sub = ("A causal decoder is trained to predict the token that comes next. The last token's state after all "
           "%d layers is normalised and multiplied by the word-embedding table (the tied LM head): one score "
           "(logit) per vocabulary entry. softmax(logits / T), then top-k and top-p, is what a sampler draws "
           "from." % ctx.n_layers)
    y = header(scene, MARGIN, MARGIN, inner, "Next token after '%s'" % short_label(ctx.tokens[-1], 16), sub)
    y = _context_line(scene, MARGIN, y, inner, ctx.text)
    y = _controls(scene, MARGIN, y, inner, pred)
    if pred.error:
        notice(scene, MARGIN, y, inner, 70, pred.error)
        y += 70
    elif not pred.ready:
        notice(scene, MARGIN, y, inner, 70, pred.loading or "loading the language-model head…")
        y += 70
    else:
        y = _bars(scene, MARGIN, y, inner, ctx.text, pred)
    scene.height = y + MARGIN
    scene.alt_text = alt_text(pred)
    return scene


def _encoder(scene: Scene, ctx: ViewContext, inner: float) -> Scene:
    y = header(scene, MARGIN, MARGIN, inner, "Next token",
               "%s is an encoder: every token attends to the whole text at once, in both directions, and "
               "the model was trained to fill in masked words, not to continue a text. It has no next-token "
               "head. Choose a causal decoder (SmolLM2-135M) to see what it predicts after your text."
               % (ctx.model_name or "This model"))
    notice(scene, MARGIN, y, inner, 60, "no next-token prediction for an encoder")
    scene.height = y + 60 + MARGIN
    scene.alt_text = "Next-token prediction is not available: the model is an encoder."
    return scene


def _context_line(scene: Scene, x: float, y: float, w: float, text: str) -> float:
    tail = text if len(text) <= MAX_TEXT_TAIL else "…" + text[-MAX_TEXT_TAIL:]
    lines = wrap_text(visible(tail).replace("␣", " "), w - 10, 13, "mono")[-2:]
    for line in lines:
        scene.text(x, y + 13, line, size=13, font="mono", color="#333333", max_width=w)
        y += 18
    scene.text(x + min(text_width(lines[-1] if lines else "", 13, "mono"), w - 20) + 4, y - 5, "▸ ?", size=13,
               color=BAR, bold=True)
    return y + 8


def _controls(scene: Scene, x: float, y: float, w: float, pred: Prediction) -> float:
    s = pred.sampler
    rows = (("sampling T", [("%g" % t, {"sample_t": t}, abs(t - s.temperature) < 1e-9) for t in SAMPLE_T_CHOICES]),
            ("top-k", [(("off" if k == 0 else str(k)), {"top_k": k}, k == s.top_k) for k in TOP_K_CHOICES]),
            ("top-p", [(("off" if p >= 1.0 else "%g" % p), {"top_p": p}, abs(p - s.top_p) < 1e-9)
                       for p in TOP_P_CHOICES]))
    cx, cy = x, y
    for name, pills in rows:
        need = text_width(name, 12, bold=True) + 8 + sum(text_width(lbl, 11, bold=on) + 28 for lbl, _, on in pills)
        if cx > x and cx + need > x + w:
            cx, cy = x, cy + 30
        scene.text(cx, cy + 15, name, size=12, bold=True, color="#222222")
        cx += text_width(name, 12, bold=True) + 8
        for label, act, on in pills:
            cx += button(scene, cx, cy + 2, label, act, active=on, size=11,
                         tooltip="sampling %s %s" % (name, label)) + 6
        cx += 18
    return cy + 38


def _bars(scene: Scene, x: float, y: float, w: float, text: str, pred: Prediction) -> float:
    cands = pred.candidates
    rh = 26.0
    label_w = min(180.0, max(text_width(short_label(visible(c.text), 18), 13, "mono") for c in cands) + 12)
    bar_max = max(w - label_w - 150, 60.0)
    top = max(max(c.probability for c in cands), max(c.raw for c in cands), 1e-12)
    for r, c in enumerate(cands):
        cy = y + r * rh
        scene.text(x + label_w - 8, cy + rh / 2, short_label(visible(c.text), 18), size=13, font="mono",
                   align="right", baseline="middle", color="#111111", max_width=label_w - 8)
        wp = bar_max * c.probability / top
        wr = bar_max * c.raw / top
        scene.rect(x + label_w, cy + 4, max(wp, 1.0), rh - 12, fill=BAR, radius=2)
        if wr >= 1.0:
            scene.rect(x + label_w, cy + rh - 7, wr, 3, fill=RAW)
        scene.text(x + label_w + max(wp, wr) + 6, cy + rh / 2, "%.1f%%" % (100 * c.probability), size=12,
                   baseline="middle", color="#222222", font="mono")
        scene.region(x, cy, w, rh, "next_token", action={"text": text + c.text},
                     tooltip="append %s (token %r, id %d): p = %.4f · logit %.3f · p at T = 1 without filters "
                             "%.4f" % (visible(c.text), c.token, c.id, c.probability, c.logit, c.raw))
    y += len(cands) * rh + 8
    scene.rect(x, y, 14, 8, fill=BAR)
    scene.text(x + 18, y + 8, "probability under the sampler (%s)" % pred.sampler.describe(), size=10,
               color="#333333")
    scene.rect(x, y + 14, 14, 3, fill=RAW)
    scene.text(x + 18, y + 19, "the model's own probability (T = 1, no top-k / top-p)", size=10, color="#333333")
    scene.text(x, y + 38, "The sampler can draw %s of the %s vocabulary entries. Click a bar (or focus it and "
               "press Enter) to append that token and predict again." % (f"{pred.kept:,}",
                                                                            f"{pred.vocab_size:,}"),
               size=11, color="#555555", max_width=w)
    return y + 46


def alt_text(pred: Prediction) -> str:
    if not pred.ready:
        return "Next-token prediction: %s" % (pred.error or pred.loading or "loading")
    items: Sequence[str] = ["%s %.1f%%" % (visible(c.text), 100 * c.probability) for c in pred.candidates]
    return "Most probable next tokens (%s): %s." % (pred.sampler.describe(), ", ".join(items))
