"""Byte budgets of the caches behind the every-layer tabs (Model, Rollout, Head stats): a cache never holds more
than its budget, and what is shown with small budgets (evicting, recomputing) equals, bit for bit, what is
shown with budgets that keep everything."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import pyapp.app.session as session_module
from pyapp.app.frame import build_frame
from pyapp.app.session import Session
from pyapp.app.state import AppState
from pyapp.core import analysis as an
from pyapp.core.encoder import LazyModel
from pyapp.core.files import default_models_dir, load_local_catalogue, read_file
from pyapp.core.lru import LRU
from pyapp.core.store import WeightStore
from pyapp.figures import load_plan

MODELS = default_models_dir()
TEXT = "The quick brown fox jumps over the lazy dog, and then it sleeps: a long, calm day."
TABS = ("model", "rollout", "stats")
HUGE = 2**40


def scene_signature(scene):
    """Every drawing op and region of a scene, arrays as bytes: equal signatures = identical drawings."""
    def plain(v):
        if isinstance(v, np.ndarray):
            return ("array", v.dtype.str, v.shape, v.tobytes())
        if isinstance(v, dict):
            return tuple(sorted((k, plain(x)) for k, x in v.items()))
        if isinstance(v, (list, tuple)):
            return tuple(plain(x) for x in v)
        return v
    return plain(scene.ops), plain(scene.regions), scene.alt_text, scene.height


def frames(session: Session, model: str, text: str, layer: int, temperature: float = 1.0):
    """The three every-layer tabs, all layers at once: (kind, entropy, layers_ready, scene signature) each."""
    out = []
    for tab in TABS:
        st = AppState(model=model, text=text, layer=layer, tab=tab, temperature=temperature)
        load_plan(session, st, MODELS)
        f = build_frame(session, st, 900, new_layers=None)
        out.append((f.kind, f.entropy, f.report["layers_ready"], scene_signature(f.scene)))
    return out


def budgeted_session(monkeypatch, traces: int, hidden: int, digests: int, dequant: int,
                     store: WeightStore = None) -> Session:
    monkeypatch.setattr(LazyModel, "TRACE_BYTES", traces)
    monkeypatch.setattr(LazyModel, "HIDDEN_BYTES", hidden)
    monkeypatch.setattr(session_module, "DIGEST_BYTES", digests)
    s = Session(load_local_catalogue(MODELS))
    if store is not None:                        # files already verified and decoded (saves time)
        s.store = store
    s.store.dequant_cache_bytes = dequant
    return s


def assert_within_budgets(s: Session) -> None:
    caches = [s._digests, s._tempered, s._rollouts] + [c for src in (s._sources.peek(k) for k in s._sources)
                                          for c in (src.encoder._traces, src.encoder._hidden)]
    for c in caches:
        assert isinstance(c, LRU) and c.bytes <= c.maxbytes
        assert c.bytes == sum(c.sizeof(c.peek(k)) for k in c)
    assert s.store.cached_bytes <= s.store.dequant_cache_bytes
    assert s.store.cached_bytes == sum(a.nbytes for a in s.store._dequantized.values())


@pytest.mark.parametrize("model, layer", [("minilm-l6", 3), ("smollm2-135m", 17)])
def test_small_budgets_draw_the_same_every_layer_tabs(monkeypatch, model, layer):
    """Budgets that hold about one layer's trace, two hidden states and three digests: every
    cache stays within its budget through the three tabs (at T = 1 and T = 2.5), and each frame is the
    same, op for op and bit for bit, as with budgets that keep everything."""
    free = budgeted_session(monkeypatch, HUGE, HUGE, HUGE, HUGE)
    want = frames(free, model, TEXT, layer) + frames(free, model, TEXT, layer, 2.5)
    n_layers = free.shape(AppState(model=model))[0]
    assert free._digests.evicted == 0 and len(free._digests) >= n_layers
    enc = free.source(AppState(model=model)).encoder
    trace_bytes = max(enc._traces.sizeof(enc._traces.peek(k)) for k in enc._traces)
    d = free._digests
    digest_bytes = max(d.sizeof(d.peek(k)) for k in d)
    hidden_bytes = max(enc._hidden.sizeof(enc._hidden.peek(k)) for k in enc._hidden)

    tight = budgeted_session(monkeypatch, int(1.5 * trace_bytes), int(2.5 * hidden_bytes), int(3.5 * digest_bytes),
                             HUGE, free.store)     # the dequantisation cache: test_dequant_cache_keeps_...
    got = []
    for temperature in (1.0, 2.5):
        for tab in TABS:
            st = AppState(model=model, text=TEXT, layer=layer, tab=tab, temperature=temperature)
            load_plan(tight, st, MODELS)
            f = build_frame(tight, st, 900, new_layers=None)
            assert_within_budgets(tight)
            got.append((f.kind, f.entropy, f.report["layers_ready"], scene_signature(f.scene)))
    assert [g[0] for g in got] == ["view"] * 6
    assert tight._digests.evicted > 0 and tight.source(AppState(model=model)).encoder._traces.evicted > 0
    for (k1, e1, l1, s1), (k2, e2, l2, s2) in zip(got, want):
        assert (k1, l1) == (k2, l2) and l1 == list(range(n_layers))
        assert e1 == e2 and s1 == s2


def test_layer_attentions_recomputes_an_evicted_layer_bit_for_bit(monkeypatch):
    s = budgeted_session(monkeypatch, 1, HUGE, HUGE, HUGE)      # no trace is ever kept
    st = AppState(text=TEXT, tab="model")
    load_plan(s, st, MODELS)
    att = s.layer_attentions(st)
    assert list(att) == list(range(6)) and len(s.source(st).encoder._traces) == 0
    ref = Session(load_local_catalogue(MODELS))
    load_plan(ref, st, MODELS)
    full = ref.source(st).encoder.attentions(s.encode(st).ids, range(6))
    for layer in range(6):
        np.testing.assert_array_equal(att[layer], full[layer])


@pytest.mark.parametrize("causal", [False, True])
def test_digest_equals_the_whole_array_analysis(causal):
    """A LayerDigest (computed head by head) gives head_stats' and rollout's numbers bit for bit."""
    s = Session(load_local_catalogue(MODELS))
    st = AppState(text=TEXT, causal=causal)
    for layer in range(6):
        load_plan(s, st.with_(layer=layer), MODELS)
    enc = s.encode(st)
    att = s.source(st).encoder.attentions(enc.ids, range(6), causal=causal)
    digests = {k: an.digest(att[k], enc.tokens, causal) for k in range(6)}
    want = an.head_stats(att, enc.tokens, causal)
    got = an.digest_stats(digests, enc.tokens, causal)
    assert [(r.layer, r.head, r.label, r.values) for r in got.rows] == \
           [(r.layer, r.head, r.label, r.values) for r in want.rows]
    np.testing.assert_array_equal(an.rollout_of_means([digests[k].mean for k in range(6)]), an.rollout(att)[-1])
    for k in range(6):
        np.testing.assert_array_equal(digests[k].mean, np.asarray(att[k], dtype=np.float64).mean(axis=0))
        np.testing.assert_array_equal(digests[k].peak, att[k].max(axis=(1, 2)))
        assert digests[k].thumbs.dtype == np.float32 and digests[k].thumbs.shape == att[k].shape  # n <= 128


def test_thumbnails_of_long_texts_are_block_maxima():
    rs = np.random.RandomState(5)
    a = rs.rand(3, 300, 300).astype(np.float32)
    a /= a.sum(axis=-1, keepdims=True)
    d = an.digest(np.tril(a), ["t"] * 300, causal=True)
    assert d.thumbs.shape == (3, 100, 100) and d.thumb_mask.shape == (100, 100)   # blocks of 3 tokens
    np.testing.assert_array_equal(d.thumbs[1], np.tril(a)[1].reshape(100, 3, 100, 3).max(axis=(1, 3)))
    pooled, mask = d.thumbnail(1, 40)                                             # then to the pixels
    assert pooled.shape == (34, 34) and mask.shape == (34, 34) and mask[0, 5] and not mask[5, 0]
    want = np.pad(d.thumbs[1].astype(np.float64), ((0, 2), (0, 2)), constant_values=-np.inf)
    want = np.where(mask, 0.0, want.reshape(34, 3, 34, 3).max(axis=(1, 3)))
    assert pooled.dtype == np.float32 and np.array_equal(pooled, want)            # exact block maxima
    assert d.thumbnail(2, 40)[1] is mask and d.thumbnail(0, 50)[1] is not mask    # one mask per size
    assert d.nbytes == 300 * 300 * 8 + 3 * 100 * 100 * 4 + 100 * 100 + 3 * 8 * (1 + len(an.STAT_KEYS))


def test_dequant_cache_keeps_a_resident_set_under_sweeps():
    """A sweep over more matrices than the cache holds (a deep-layer edit) keeps what is resident from sweep to
    sweep instead of dropping each matrix just before it is read again; the values are the same."""
    cat = load_local_catalogue(MODELS)
    one = 1536 * 576 * 4                                             # one FFN matrix of SmolLM2, float32
    store = WeightStore(cat, dequant_cache_bytes=12 * one)
    entry = cat.get("smollm2-135m")
    names = []
    for layer in range(4):
        f = entry.files["layer.%d.ffn" % layer]
        store.add(f.path, read_file(store, f, MODELS))
        names += [(f.path, n) for n in sorted(store.stored(f.path)) if n.endswith("proj.weight")]
    assert len(names) == 12 and sum(store.stored(p)[n].dequantize().nbytes for p, n in names) == 12 * one
    store.dequant_cache_bytes = 7 * one                              # 7 of the 12 matrices fit
    done = []
    for _ in range(5):
        d0 = store.dequantized
        for p, n in names:
            got = store.tensor(p, n)
            assert store.cached_bytes <= store.dequant_cache_bytes
            np.testing.assert_array_equal(got, store.stored(p)[n].dequantize())
        done.append(store.dequantized - d0)
    assert done == [12, 5, 5, 5, 5]                                  # plain LRU: 12 every sweep
    # the first sweep was plain LRU (the last 7 stay); from then on those stay resident.  What is no longer
    # read goes once it is stale (unused for two sweeps' worth of reads): what is read now takes its place
    resident = [k for k in names if k in store._dequantized]
    assert resident == names[5:12]
    for _ in range(store.stale_reads // 3 + 1):
        for p, n in names[5:8]:
            store.tensor(p, n)
    d0 = store.dequantized
    for _ in range(2):
        for p, n in names[:4]:
            store.tensor(p, n)
    assert store.dequantized - d0 == 4 and set(store._dequantized) == set(names[5:8] + names[:4])
    assert store.cached_bytes == 7 * one


def test_minilm_every_layer_tabs_at_512_tokens_stay_small():
    """All three tabs at 512 tokens on MiniLM: the traced peak stays well under what the old caches held
    (every layer's scores, scaled scores and probabilities: 6 x 3 x 12 MB, then float64 copies of them)."""
    s = Session(load_local_catalogue(MODELS))
    text = " ".join("word%d, more words here." % i for i in range(300))
    for tab in TABS:
        load_plan(s, AppState(text=text, tab=tab), MODELS)
    tracemalloc.start()
    try:
        for tab in TABS:
            f = build_frame(s, AppState(text=text, tab=tab), 900, new_layers=None)
            assert f.kind == "view" and f.report["n"] == 512 and f.report["layers_ready"] == list(range(6))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_within_budgets(s)
    assert peak < 340 * 2**20, peak / 2**20   # 486 MB before the budgets (and 2.7 GB on SmolLM2)


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_session_rollout_reuses_its_products_bit_for_bit(temperature):
    """The rollout tab continues the products of T = 1 layers the session kept (one product per new layer);
    the result is ``analysis.rollout`` of the layers' attention (the shown one through its temperature)."""
    s = Session(load_local_catalogue(MODELS))
    st = AppState(text=TEXT, tab="rollout", layer=2, temperature=temperature)
    load_plan(s, st.with_(tab="model"), MODELS)
    for _ in range(2):
        r_model = s.context(st.with_(tab="model"), new_layers=None)       # computes every layer's digest
    ids = s.encode(st).ids
    att = s.source(st).encoder.attentions(ids, range(6))
    att[2] = s.context(st).trace.probs                                     # the shown layer, as shown
    want = an.rollout(att)[-1]
    for _ in range(2):                                                     # the second: from kept products
        np.testing.assert_array_equal(s.context(st).rollout(), want)
    assert len(s._rollouts) == (6 if temperature == 1.0 else 2) and r_model.contiguous_layers() == 6
