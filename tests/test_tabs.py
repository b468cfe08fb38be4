"""The tab registry: one table from which the tabs, their views, figures and the page's tab bar derive."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pyapp.app import state, stepping, tabs
from pyapp.app.context import ViewContext
from pyapp.core.attention import AttentionTrace
from pyapp.figures import VIEWS

ROOT = Path(__file__).resolve().parents[1]


def test_everything_derives_from_the_registry():
    ids = [t.id for t in tabs.TAB_LIST]
    assert list(tabs.TABS) == ids and len(set(ids)) == len(ids)
    # the step count of a link: the most any model has (an encoder 9, GPT-2 10, Llama 11: app/stepping.py)
    assert state.TABS is tabs.TABS and state.N_STEPS == tabs.N_STEPS == 11 and state.TAB_VIEWS == tabs.TAB_VIEWS
    assert [len(stepping.step_keys(a, r)) for a, r in (("bert", False), ("gpt2", False), ("llama", True))] == \
        [9, 10, 11]
    assert tabs.VALUE_TABS == ("steps", "math", "architecture")
    assert {t.id for t in tabs.TAB_LIST if t.all_layers} == {"model", "rollout", "stats"}
    assert set(VIEWS) == {t.figure_name for t in tabs.TAB_LIST} and VIEWS["step"].id == "steps"
    for t in tabs.TAB_LIST:
        assert callable(t.view().render), t.id
    assert len(tabs.TAB["steps"].view().STEP_TITLES) == len(stepping.ENCODER_STEPS) == 9
    assert [t.id for t in tabs.TAB_LIST if t.next_token] == ["next"]


def test_the_pages_tab_bar_is_the_registrys():
    html = (ROOT / "web" / "index.html").read_text(encoding="utf-8")
    assert tabs.tab_bar_html() in html
    assert html.count('role="tab"') == len(tabs.TAB_LIST)


def test_app_layer_never_imports_views_at_module_level():
    """session / state / context / tabs import no view module (the registry imports one when asked)."""
    for name in ("session", "state", "context", "tabs", "interact"):
        src = (ROOT / "pyapp" / "app" / (name + ".py")).read_text(encoding="utf-8")
        assert "views" not in "".join(line for line in src.splitlines() if line.startswith(("from", "import")))


def _ctx(n_heads=3, n=4, **fields):
    rng = np.random.RandomState(0)
    p = rng.rand(n_heads, n, n)
    p /= p.sum(-1, keepdims=True)
    q = np.zeros((n_heads, n, 2))
    tr = AttentionTrace(x=np.zeros((n, 6)), q=q, k=q, v=None, scores=p, scaled=p, masked=None, logits=p, probs=p,
                        head_outputs=None, concat=None, output=None, temperature=1.0, causal=False)
    return ViewContext(tokens=["[CLS]", "a", "b", "[SEP]"], trace=tr, **fields)


def test_shown_matrices():
    ctx = _ctx(head=2)
    m, what = tabs.shown_matrix(ctx, "heads")
    assert np.array_equal(m, ctx.trace.probs[2]) and what == "head 2"
    m, what = tabs.shown_matrix(ctx, "lines")
    assert np.allclose(m, ctx.trace.probs.mean(0)) and what == "mean of 3 heads"
    m, what = tabs.shown_matrix(_ctx(heads_shown=[0, 2]), "lines")
    assert what == "mean of heads 0, 2"
    m, what = tabs.shown_matrix(_ctx(pinned_row=2), "neuron")
    assert m.shape == (1, 4) and what == "head 0, query 'b'"
    m, what = tabs.shown_matrix(ctx, "rollout")
    assert what == "rollout of layers 0–0" and np.allclose(m.sum(-1), 1)
    assert tabs.tab("no-such-tab") is tabs.TAB_LIST[0]
    assert tabs.row_entropy_bits(np.full((4, 4), 0.25)) == 2.0
