"""python -m pyapp render: every view to a PNG of the asked size whose pixels are the model's numbers.

The expected numbers come from the core directly (LocalModel + Encoder, core.analysis.rollout), not from
the figure; where a heatmap cell lands comes from the scene's image op geometry and the backends' shared
pixel snapping (scene.device_box + nearest_upscale).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, run_cli

from pyapp.core.analysis import rollout
from pyapp.core.files import LocalModel
from pyapp.draw.colormap import VIRIDIS
from pyapp.draw.scene import device_box
from pyapp.figures import figure

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

FOX = "The quick brown fox jumps over the lazy dog."
VIEWS = ["overview", "heads", "step:1", "step:2", "step:3", "step:4", "step:5", "step:6", "step:7", "step:8",
         "step:9", "math", "architecture", "model", "lines", "neuron", "rollout", "stats"]


run = run_cli


def png(path) -> np.ndarray:
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    return np.array(Image.open(path).convert("RGBA"))


@pytest.fixture(scope="module")
def minilm():
    """MiniLM from models/ on disk with every layer's Q/K and full blocks loaded: the reference numbers."""
    model = LocalModel("minilm-l6")
    ids = model.tokenizer.encode(FOX).ids
    model.need(ids, 5, ("qk", "vo"))
    return model, ids


def cell_pixel(op, rows: int, cols: int, i: int, j: int, scale: float):
    """Device pixel (x, y) at the centre of cell (i, j) of an image op of a rows x cols matrix, as both
    backends place it (device_box snapping, nearest_upscale sampling)."""
    x, y, w, h = device_box(op["x"], op["y"], op["w"], op["h"], scale)
    cx = next(c for c in range(w) if c * cols // w == j)  # first device column showing column j
    cw = sum(1 for c in range(w) if c * cols // w == j)
    cy = next(r for r in range(h) if r * rows // h == i)
    ch = sum(1 for r in range(h) if r * rows // h == i)
    return x + cx + cw // 2, y + cy + ch // 2


def image_op_at(scene, region):
    """The image op drawn exactly over a hit region's box (the heatmap's cells)."""
    for op in scene.ops:
        if op["op"] == "image" and math.isclose(op["x"], region["x"]) and math.isclose(op["y"], region["y"]) \
                and math.isclose(op["w"], region["w"]) and math.isclose(op["h"], region["h"]):
            return op
    raise AssertionError("no image op under the region")


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_writes_a_png_of_the_asked_size(view, tmp_path):
    out = tmp_path / "v.png"
    code, stdout, err = run(["render", "--view", view, "--width", "1000", "--scale", "1.5", "--out", str(out), FOX])
    assert code == 0, err
    img = png(out)
    assert img.shape[1] == 1500 and img.shape[0] > 150
    assert stdout == "wrote %s (%d x %d px)\n" % (out, img.shape[1], img.shape[0])
    colours = np.ascontiguousarray(img).view(np.uint32)  # one RGBA pixel per uint32
    assert len(np.unique(colours)) > 8  # something was drawn, not a blank page


def test_overview_strongest_cell_is_the_colormap_top(tmp_path, minilm):
    model, ids = minilm
    avg = model.encoder.trace(ids, 0, values=False).probs.mean(axis=0)  # (n, n) head-averaged layer 0
    out = tmp_path / "o.png"
    argv = ["--width", "900", "--scale", "2", FOX]
    assert run(["render", "--view", "overview", "--out", str(out)] + argv)[0] == 0
    img = png(out)
    assert img.shape[1] == 1800
    scene = figure(FOX, view="overview", width=900, scale=2).scene  # the same scene the CLI drew
    main_grid = next(r for r in scene.regions if r["kind"] == "attn_cell" and r["data"]["head"] is None)
    op = image_op_at(scene, main_grid)
    n = len(ids)
    assert op["rgba"].shape == (n, n, 4)
    i, j = np.unravel_index(np.argmax(avg), avg.shape)
    x, y = cell_pixel(op, n, n, i, j, 2.0)
    assert tuple(img[y, x]) == tuple(VIRIDIS[255])
    i, j = np.unravel_index(np.argmin(avg), avg.shape)  # the weakest cell: its own LUT entry
    x, y = cell_pixel(op, n, n, i, j, 2.0)
    assert np.abs(img[y, x].astype(int) - VIRIDIS[int(np.round(avg[i, j] / avg.max() * 255))]).max() <= 1


def test_model_view_draws_every_layer_from_the_model(tmp_path, minilm):
    """The top layer's thumbnails are real (the file plan fed every layer): head 3 of layer 5's strongest
    cell is the colormap top at its place."""
    model, ids = minilm
    probs = model.encoder.attentions(ids, [5])[5][3]  # (n, n)
    out = tmp_path / "m.png"
    assert run(["render", "--view", "model", "--out", str(out), FOX])[0] == 0
    img = png(out)
    scene = figure(FOX, view="model").scene
    thumb = next(r for r in scene.regions if r["kind"] == "model_thumb" and r["data"]["action"]["layer"] == 5
                 and r["data"]["action"]["head"] == 3)
    op = image_op_at(scene, thumb)
    n = len(ids)
    i, j = np.unravel_index(np.argmax(probs), probs.shape)
    x, y = cell_pixel(op, n, n, i, j, 1.0)
    assert tuple(img[y, x]) == tuple(VIRIDIS[255])
    assert "not computed" not in scene.alt_text and "computing" not in str([o.get("s") for o in scene.ops])


def test_rollout_view_is_the_rollout_of_all_layers(tmp_path, minilm):
    model, ids = minilm
    r = rollout(model.encoder.attentions(ids, range(6)))[-1]  # (n, n)
    out = tmp_path / "r.png"
    assert run(["render", "--view", "rollout", "--out", str(out), FOX])[0] == 0
    img = png(out)
    scene = figure(FOX, view="rollout").scene
    grid = next(g for g in scene.regions if g["kind"] == "attn_cell")
    np.testing.assert_allclose(grid["data"]["matrix"], r, atol=1e-5)
    op = image_op_at(scene, grid)
    i, j = np.unravel_index(np.argmax(r), r.shape)
    x, y = cell_pixel(op, len(ids), len(ids), i, j, 1.0)
    assert tuple(img[y, x]) == tuple(VIRIDIS[255])


def test_stats_and_steps_get_every_layer_and_the_values(tmp_path):
    stats = figure(FOX, view="stats").scene
    assert len(stats.alt_text.splitlines()) == 1 + 6 * 12  # one row per head of every layer
    for view in ("step:7", "step:9", "math"):
        texts = " ".join(o["s"] for o in figure(FOX, view=view).scene.ops if o["op"] == "text")
        assert "loading" not in texts  # the CLI read V/O of the layer: no "loading V/O weights" notice


def test_layer_head_temperature_causal_and_synthetic(tmp_path, minilm):
    model, ids = minilm
    out = tmp_path / "h.png"
    code, _, err = run(["render", "--view", "heads", "--layer", "4", "--head", "7", "--temperature", "0.5",
                        "--causal", "--out", str(out), FOX])
    assert code == 0, err
    fig = figure(FOX, view="heads", layer=4, head=7, temperature=0.5, causal=True)
    big = next(r for r in fig.scene.regions if r["kind"] == "attn_cell" and r["data"]["head"] == 7)
    want = model.encoder.trace(ids, 4, 0.5, causal=True, values=False).probs[7]
    np.testing.assert_allclose(big["data"]["matrix"], want, atol=1e-6)
    assert np.array_equal(png(out), np.array(fig.image()))
    code, _, err = run(["render", "--model", "deterministic", "--d-model", "32", "--heads", "2", "--view",
                        "heads", "--width", "640", "--out", str(out), FOX])
    assert code == 0, err
    assert png(out).shape[1] == 640
    fig = figure(FOX, view="heads", model="deterministic", d_model=32, heads=2, width=640)
    assert fig.context.n_heads == 2 and fig.context.d_model == 32


def test_stdin_text(tmp_path):
    out = tmp_path / "s.png"
    code, _, err = run(["render", "--view", "step:1", "--out", str(out), "-"], stdin="two\nlines")
    assert code == 0, err
    texts = [o["s"] for o in figure("two\nlines", view="step:1").scene.ops if o["op"] == "text"]
    assert "two" in texts and "lines" in texts


@pytest.mark.parametrize("argv, says", [
    (["--model", "nope"], "unknown model"),
    (["--model", "distilbert"], "not built"),
    (["--layer", "6"], "layer 6 out of range"),
    (["--layer", "-1"], "out of range"),
    (["--head", "12"], "head 12 out of range"),
    (["--view", "bogus"], "unknown view"),
    (["--view", "step:10"], "step"),
    (["--view", "step:x"], "step"),
    (["--temperature", "0"], "temperature"),
    (["--temperature", "-1"], "temperature"),
    (["--temperature", "inf"], "temperature"),
    (["--width", "10"], "width"),
    (["--scale", "0"], "scale"),
    (["--pin", "99"], "out of range"),
    (["--model", "deterministic", "--d-model", "10", "--heads", "4"], "multiple"),
    (["--layer", "x"], "invalid int"),
])
def test_bad_input_exits_2_with_one_line(argv, says, tmp_path):
    out = tmp_path / "x.png"
    code, stdout, err = run(["render", "--out", str(out)] + argv + [FOX])
    assert code == 2 and err.count("\n") == 1 and says in err and "Traceback" not in err, err
    assert stdout == "" and not out.exists()


def test_unwritable_out_exits_2(tmp_path):
    for out, says in ((tmp_path / "no" / "such" / "x.png", "does not exist"), (tmp_path, "is a folder")):
        code, _, err = run(["render", "--out", str(out), FOX])
        assert code == 2 and err.count("\n") == 1 and says in err
    code, _, err = run(["render", FOX])  # --out is required
    assert code == 2 and err.count("\n") == 1 and "--out" in err
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        code, _, err = run(["render", "--out", str(ro / "x.png"), FOX])
        ro.chmod(0o700)
        assert code == 2 and "not writable" in err


def test_python_dash_m_render(tmp_path):
    out = tmp_path / "fox.png"
    res = subprocess.run([sys.executable, "-m", "pyapp", "render", "--view", "lines", "--width", "700", "--out",
                          str(out), FOX], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("wrote ") and png(out).shape[1] == 700
    bad = subprocess.run([sys.executable, "-m", "pyapp", "render", "--view", "nope", "--out", str(out), FOX],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stdout == ""
