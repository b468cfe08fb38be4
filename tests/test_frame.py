"""build_frame: everything the page shows for a state, as plain data, in CPython (no DOM)."""

from __future__ import annotations

import json

import pytest

from pyapp.app.frame import build_frame, truncation_notice
from pyapp.app.session import Session
from pyapp.app.state import MAX_TEXT_CHARS, AppState
from pyapp.core.files import default_models_dir, load_local_catalogue
from pyapp.figures import load_plan

MODELS = default_models_dir()


@pytest.fixture
def session():
    return Session(load_local_catalogue(MODELS))


def test_view_frame_is_plain_data(session):
    st = AppState(tab="heads", head=3)
    load_plan(session, st, MODELS)
    f = build_frame(session, st, 900)
    assert f.kind == "view" and f.status == "" and not f.retry
    c = f.controls
    assert (c.model, c.n_layers, c.n_heads, c.head, c.tab, c.n_steps) == ("minilm-l6", 6, 12, 3, "heads", 0)
    assert f.chips.tokens[0] == "[CLS]" and f.entropy_of == "head 3" and f.link == "head=3&tab=heads"
    json.dumps(f.report)                      # the report is JSON as it is
    assert f.report["frame"] == "view" and f.report["heatmap"]["rows"] == len(f.chips.tokens)


def test_loading_and_error_frames_show_the_new_models_controls(session):
    load_plan(session, AppState(model="demo-tiny", layer=1), MODELS)
    st = AppState(model="minilm-l6", layer=1)
    loading = build_frame(session, st, 900, waiting=session.plan(st).required)
    assert loading.kind == "loading" and loading.status.startswith("Loading minilm-l6/")
    plan = session.plan(st)
    err = session.fetch_error(plan.required[-1].path, "could not be downloaded (HTTP 404)")
    f = build_frame(session, st, 900, error=err)
    assert f.kind == "error" and f.retry and f.status_kind == "error"
    assert f.status.startswith("Could not load minilm-l6/") and "HTTP 404" in f.status
    c = f.controls
    assert (c.model, c.n_layers, c.n_heads, c.layer) == ("minilm-l6", 6, 12, 1) and "MiniLM" in c.model_info
    assert f.link == "layer=1" and f.report["model"] == "minilm-l6" and f.report["heatmap"] is None
    assert "Could not load" in f.scene.alt_text and f.scene.label.startswith("Error: ")
    json.dumps(f.report)


def test_catalogue_problem_is_an_error_frame_with_retry():
    session = Session(None, problem="Could not read the model catalogue (bad json).")
    f = build_frame(session, AppState(), 900)
    assert f.kind == "error" and f.retry and f.status == "Could not read the model catalogue (bad json)."


def test_truncation_notice_counts_tokens_and_says_when_characters_were_cut():
    assert truncation_notice(0, 12, 40) == ""
    assert truncation_notice(7283, 512, 27000) == ("Your text is longer than 512 tokens: it was truncated, the last "
                                                   "7,283 tokens were dropped.")
    msg = truncation_notice(5, 512, MAX_TEXT_CHARS + 1)
    assert f"only the first {MAX_TEXT_CHARS:,} characters were read" in msg and "last 5 tokens" in msg


def test_a_failing_view_is_an_error_frame(session, monkeypatch):
    st = AppState(tab="overview")
    load_plan(session, st, MODELS)
    from pyapp.views import overview

    monkeypatch.setattr(overview, "render", lambda ctx, width: 1 / 0)
    f = build_frame(session, st, 900)
    assert f.kind == "error" and "ZeroDivisionError" in f.status and "Traceback" in f.detail


def test_a_long_loading_message_wraps_on_a_phone_instead_of_shrinking(session):
    """The first plan names three files: at 360 px the notice puts them on lines that fit (one line shrunk to
    the box was unreadable, ~5 px); at 900 px it stays one line."""
    from pyapp.draw.scene import text_width

    st = AppState()
    for width, n_lines in ((360, 3), (900, 1)):
        f = build_frame(session, st, width, waiting=session.plan(st).required)
        lines = [op for op in f.scene.ops if op["op"] == "text" and op["italic"]]
        assert len(lines) == n_lines, [op["s"] for op in lines]
        assert " ".join(op["s"] for op in lines) == f.status
        for op in lines:
            assert text_width(op["s"], op["size"]) <= op["max_width"], op["s"]
        ys = [op["y"] for op in lines]
        assert ys == sorted(ys) and len(set(ys)) == len(ys)
