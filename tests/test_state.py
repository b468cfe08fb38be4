"""AppState: validation, clamping, the log-scale temperature slider and the URL round trip."""

from __future__ import annotations

import math

import pytest

from pyapp.views.state import (
    D_MODEL_CHOICES,
    HEADS_CHOICES,
    N_STEPS,
    AppState,
    slider_from_temperature,
    temperature_from_slider,
)


def test_defaults_are_the_real_model_overview():
    s = AppState()
    assert s.model == "minilm-l6" and s.tab == "overview" and s.temperature == 1.0 and not s.causal
    assert s.text and s.clamped() == s


def test_clamping_to_the_model():
    s = AppState(layer=9, head=40, step=99, pinned_row=7, temperature=50.0, tab="nope").clamped(
        n_layers=6, n_heads=12, n_tokens=5)
    assert (s.layer, s.head, s.step, s.pinned_row, s.temperature, s.tab) == (5, 11, N_STEPS, None, 10.0, "overview")
    s = AppState(layer=-3, head=-1, step=0, temperature=0.0001, pinned_row=-4).clamped(n_layers=1, n_heads=1)
    assert (s.layer, s.head, s.step, s.temperature, s.pinned_row) == (0, 0, 1, 0.1, None)
    assert AppState(temperature=float("nan")).clamped().temperature == 1.0
    assert AppState(pinned_row=3).clamped(n_tokens=4).pinned_row == 3


def test_synthetic_heads_divide_d_model():
    for d in D_MODEL_CHOICES:
        for h in HEADS_CHOICES:
            s = AppState(model="random", d_model=d, heads=h).clamped()
            assert s.d_model % s.heads == 0 and s.heads <= h
    s = AppState(d_model=8, heads=12).clamped()
    assert s.heads in (1, 2, 4, 8) and 8 % s.heads == 0
    assert AppState(d_model=100).clamped().d_model in D_MODEL_CHOICES


@pytest.mark.parametrize("pos,t", [(-1, 0.1), (0, 1.0), (1, 10.0), (0.5, 10 ** 0.5), (-0.5, 10 ** -0.5)])
def test_temperature_slider_is_log_scale(pos, t):
    assert temperature_from_slider(pos) == pytest.approx(t, rel=1e-4)
    assert slider_from_temperature(t) == pytest.approx(pos, abs=1e-4)


def test_temperature_slider_clamps():
    assert temperature_from_slider(5) == 10.0 and temperature_from_slider(-5) == 0.1
    assert slider_from_temperature(1000) == 1.0 and slider_from_temperature(0) == -1.0
    assert temperature_from_slider("junk") == 1.0


def test_query_round_trip():
    s = AppState(text="héllo <b>&amp; wörld", model="random", layer=0, head=3, temperature=2.5, causal=True,
                 tab="steps", step=6, pinned_row=2, d_model=128, heads=8, seed=42, arch="decoder")
    q = s.to_query()
    assert "<" not in q and " " not in q
    assert AppState.from_query(q) == s
    assert AppState.from_query("?" + q) == s
    assert AppState().to_query() == ""
    assert AppState.from_query("") == AppState()


def test_query_ignores_junk():
    s = AppState.from_query("layer=abc&temperature=inf&tab=<script>&unknown=1&causal=yes&step=-4&pinned_row=none")
    assert s.layer == 0 and s.temperature == 1.0 and s.tab == "overview" and s.causal and s.step == 1
    assert s.pinned_row is None
    assert math.isfinite(AppState.from_query("temperature=1e999").temperature)
