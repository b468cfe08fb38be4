"""pyapp.figure: the notebook object (inline PNG, save) and the orchestration behind it (the file plan)."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import pyapp
from pyapp.app.session import Session
from pyapp.app.state import AppState
from pyapp.core.files import LocalModel
from pyapp.figures import VIEWS, Figure, FigureError, figure, parse_view, session_for
from pyapp.views import lines as head_view

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

FOX = "The quick brown fox jumps over the lazy dog."
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_repr_png_is_the_figure_as_png(tmp_path):
    fig = pyapp.figure(FOX, view="overview", layer=2, head=5, width=800, scale=1.5)
    assert isinstance(fig, Figure)
    data = fig._repr_png_()
    assert isinstance(data, bytes) and data[:8] == SIGNATURE
    img = Image.open(io.BytesIO(data))
    assert img.size == fig.size and img.size[0] == 1200
    assert img.size[1] == int(np.ceil(fig.scene.height * 1.5))
    path = fig.save(str(tmp_path / "fig.anything"))  # always PNG
    with open(path, "rb") as fh:
        assert fh.read(8) == SIGNATURE
    assert np.array_equal(np.array(Image.open(path)), np.array(img))
    assert "layer 2" in repr(fig) and fig.alt_text.startswith("Mean attention of 12 heads, layer 2")
    assert fig.context.layer == 2 and fig.context.head == 5


def test_import_pyapp_stays_light():
    """``pyapp.figure`` is resolved lazily: the browser imports pyapp without figures.py (CPython only)."""
    code = "import sys, pyapp; assert 'pyapp.figures' not in sys.modules; f = pyapp.figure; " \
           "assert 'pyapp.figures' in sys.modules and f.__module__ == 'pyapp.figures'"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    with pytest.raises(AttributeError):
        pyapp.no_such_thing  # noqa: B018


def test_parse_view_and_bad_arguments():
    assert parse_view("overview") == ("overview", 1) and parse_view(" Step:7 ") == ("step", 7)
    assert set(VIEWS) == {"overview", "heads", "step", "math", "architecture", "model", "lines", "neuron",
                          "rollout", "stats", "next"}
    bad = [dict(view="nope"), dict(view="step:0"), dict(view="step:10"), dict(view="step:12"), dict(layer=6), dict(layer=1.5), dict(head=True),
           dict(head=-1), dict(temperature=0), dict(temperature=float("nan")), dict(width=100),
           dict(scale=100), dict(pinned_row=12), dict(arch="rnn"), dict(text=None)]
    for kw in bad:
        args = dict(text=FOX)
        args.update(kw)
        with pytest.raises(FigureError):
            figure(args.pop("text"), **args)
    assert issubclass(FigureError, ValueError)
    fig = figure(FOX, view="neuron", layer=np.int64(1), head=np.int32(2), pinned_row=4)
    assert (fig.context.layer, fig.context.head_index, fig.context.pinned_row) == (1, 2, 4)


def test_one_session_per_models_folder():
    assert session_for() is session_for(None)
    s = session_for()
    figure(FOX, view="overview")
    before = s.stats["tokenize"]
    figure(FOX, view="heads", head=3)
    assert s.stats["tokenize"] == before  # same text: the cached encoding, no re-tokenizing


def test_view_state_through_typed_arguments():
    fig = figure(FOX, view="lines", heads_shown=[3])
    colours = {op["color"] for op in fig.scene.ops if op["op"] == "line"}
    assert colours == {head_view.head_color(3)}


def test_research_views_see_the_shown_layer_through_temperature():
    model = LocalModel("minilm-l6")
    ids = model.tokenizer.encode(FOX).ids
    model.need(ids, 5, ("qk",))
    want = model.encoder.attentions(ids, range(6))  # T = 1
    fig = figure(FOX, view="model", layer=2, temperature=0.5)
    att = fig.context.layer_attentions()
    assert sorted(att) == list(range(6))
    for layer in (0, 1, 3, 4, 5):
        np.testing.assert_allclose(att[layer], want[layer], atol=1e-6)
    hot = model.encoder.trace(ids, 2, 0.5, values=False).probs
    np.testing.assert_allclose(att[2], hot, atol=1e-6)
    assert not np.allclose(att[2], want[2], atol=1e-3)


def test_file_plan_progressive_layers():
    """The shell's loop: the plan's per-layer batches, each layer computed one at a time from the store."""
    from pyapp.core.files import fetch_into, load_local_catalogue

    session = Session(load_local_catalogue(None))
    state = AppState(text=FOX, model="minilm-l6", layer=0, tab="model")
    fetch_into(session.store, session.plan(state).required)  # tokenizer
    fetch_into(session.store, session.plan(state).required)  # embeddings + layer 0 Q/K
    assert not session.plan(state).required
    ctx = session.context(state, new_layers=0)
    plan = session.plan(state)
    assert [layer for layer, _ in plan.layers] == [1, 2, 3, 4, 5]          # layer 0: computed for the view
    assert sorted(session.layer_attentions(state, new_layers=0)) == [0]
    files = [f for layer, batch in plan.layers if layer <= 2 for f in batch]
    parts = sorted({f.path.rsplit("/", 1)[-1] for f in files})
    assert parts == ["layer0.ffn.json", "layer0.vo.json", "layer1.ffn.json", "layer1.qk.json", "layer1.vo.json",
                     "layer2.qk.json"]
    assert len(files) == len(parts), "each file in one batch only"
    fetch_into(session.store, files)
    assert sorted(session.layer_attentions(state)) == [0, 1, 2]              # layer 3 misses its files
    assert [layer for layer, batch in session.plan(state).layers if batch] == [3, 4, 5]
    for layer, batch in session.plan(state).layers:
        fetch_into(session.store, batch)
        ctx = session.context(state, new_layers=1)
        assert layer in ctx.attentions
    assert not session.plan(state) and sorted(ctx.layer_attentions()) == list(range(6))
    synth = AppState(text=FOX, model="random", heads=2, d_model=16, tab="stats")
    assert not session.plan(synth).files()
    assert session.layer_attentions(synth)[0].shape == (2, 12, 12)
