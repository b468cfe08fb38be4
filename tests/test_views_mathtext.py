"""The canvas math layout: boxes stack, fractions centre, matrices truncate with ⋯ ⋮ ⋱."""

from __future__ import annotations

import numpy as np

from pyapp.draw.mathtext import Dots, Frac, Grid, Row, Scripts, Sqrt, Text, _pick, draw, matrix_of, var
from pyapp.draw.scene import Scene, text_width


def test_row_width_and_height():
    a, b = Text("Q", 20, italic=True), Text("K", 20, italic=True)
    row = Row([a, b], gap=2)
    assert row.w == a.w + b.w + 2
    assert row.asc == a.asc and row.desc == a.desc
    assert a.w > text_width("Q", 20, "serif")  # italic slant allowance


def test_fraction_centres_numerator_and_denominator():
    num, den = Text("QKᵀ", 20), Sqrt(var("d", 20, sub="k"), 20)
    f = Frac(num, den, 20)
    assert f.w >= max(num.w, den.w)
    scene = Scene(300, 200)
    draw(scene, f, 10, 10)
    bar = [op for op in scene.ops if op["op"] == "line"][0]
    texts = [op for op in scene.ops if op["op"] == "text"]
    qk = [t for t in texts if t["s"] == "QKᵀ"][0]
    assert qk["x"] == (bar["x0"] - 1 + bar["x1"] + 1) / 2  # centred over the bar
    assert qk["y"] < bar["y0"] < [t for t in texts if t["s"] == "d"][0]["y"]


def test_scripts_raise_and_lower():
    s = Scripts(Text("W", 20, italic=True), Text("Q", 14), Text("h", 14), 20)
    scene = Scene(100, 100)
    draw(scene, s, 0, 0)
    ys = {op["s"]: op["y"] for op in scene.ops if op["op"] == "text"}
    assert ys["Q"] < ys["W"] < ys["h"]


def test_matrix_truncation_picks_first_and_last():
    assert _pick(4, 6) == [0, 1, 2, 3]
    assert _pick(12, 6) == [0, 1, 2, 3, -1, 11]
    a = np.arange(12 * 32, dtype=np.float32).reshape(12, 32) / 100.0
    m = matrix_of(a, 12, max_rows=6, max_cols=5)
    grid = m.body
    assert isinstance(grid, Grid) and len(grid.cells) == 6 and len(grid.cells[0]) == 5
    assert grid.cells[0][0].s == "0.00" and grid.cells[0][-1].s == "0.31"
    assert isinstance(grid.cells[0][3], Dots) and grid.cells[0][3].kind == "h"
    assert grid.cells[4][0].kind == "v" and grid.cells[4][3].kind == "d"
    assert grid.cells[-1][-1].s == "%.2f" % a[11, 31]
    small = matrix_of(-a[:2, :3], 12)
    assert small.body.cells[0][1].s == "−0.01"  # a real minus sign


def test_grid_centres_on_the_math_axis():
    g = Grid([[Text("1", 10)], [Text("2", 10)], [Text("3", 10)]], 10)
    assert abs((g.asc - g.desc) / 2 - 0.28 * 10) < 1e-9
