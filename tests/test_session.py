"""Session: what to fetch for a state, and that each control change redoes only the work it affects."""

from __future__ import annotations

import numpy as np
import pytest

import pyapp.core.encoder as encoder_module
from pyapp.app.session import Session, SessionError
from pyapp.app.state import AppState
from pyapp.app.tabs import row_entropy_bits, shown_matrix
from pyapp.core.files import default_models_dir, load_local_catalogue, read_file
from pyapp.core.weights import WeightFileError

MODELS = default_models_dir()


@pytest.fixture
def session():
    return Session(load_local_catalogue(MODELS))


def load(session: Session, state: AppState, later: bool = True):
    """Feed the session every file its plan asks for, from models/ on disk; return the paths fetched."""
    fetched = []
    while True:
        needs = session.plan(state)
        files = needs.required + (needs.later if later else [])
        if not files:
            return fetched
        for f in files:
            session.add_file(f.path, read_file(session.store, f, MODELS))
            fetched.append(f.path)


@pytest.fixture
def counts(monkeypatch):
    """Count the real matmul work: multi-head attention runs and embedding lookups."""
    n = {"mha": 0, "embed": 0}
    real_mha, real_embed = encoder_module.multi_head_attention, encoder_module.Encoder.embed

    def mha(*a, **k):
        n["mha"] += 1
        return real_mha(*a, **k)

    def embed(self, ids):
        n["embed"] += 1
        return real_embed(self, ids)

    monkeypatch.setattr(encoder_module, "multi_head_attention", mha)
    monkeypatch.setattr(encoder_module.Encoder, "embed", embed)
    return n


def test_first_view_needs_tokenizer_then_layer0_qk_only(session):
    st = AppState()
    first = session.plan(st)
    # the tokenizer first; what any text needs downloads beside it: the embedding norm and layer 0's Q/K
    assert [f.path for f in first.required] == ["minilm-l6/tokenizer.json", "minilm-l6/embeddings.norm.json",
                                                "minilm-l6/layer0.qk.json"] and not first.later
    for f in first.required:
        session.add_file(f.path, read_file(session.store, f, MODELS))
    rows = session.plan(st).required                       # then only the rows of this text's ids
    assert rows and all(f.path.startswith(("minilm-l6/word/", "minilm-l6/position/")) for f in rows), rows
    load(session, st, later=False)
    paths = [f.path for f in session.store.missing("minilm-l6", session.encode(st).ids, 0, ("qk", "vo"))]
    assert paths == ["minilm-l6/layer0.vo.json"], "overview at layer 0 must not fetch V/O"
    ctx = session.context(st)
    assert ctx.tokens[0] == "[CLS]" and ctx.n_heads == 12 and ctx.layer == 0 and not ctx.has_values


def test_the_first_plan_adds_only_text_free_files_of_a_model_that_can_be_shown(session):
    """Beside the tokenizer: the shown layer's Q/K and the full blocks below it, never a row of the text; a
    synthetic or unknown model adds nothing (the next plan says what it needs, or why it cannot be shown)."""
    deep = [f.path for f in session.plan(AppState(layer=2)).required]
    assert deep[0] == "minilm-l6/tokenizer.json"
    assert set(deep[1:]) == {"minilm-l6/embeddings.norm.json", "minilm-l6/layer0.qk.json",
                             "minilm-l6/layer0.vo.json", "minilm-l6/layer0.ffn.json", "minilm-l6/layer1.qk.json",
                             "minilm-l6/layer1.vo.json", "minilm-l6/layer1.ffn.json", "minilm-l6/layer2.qk.json"}
    for model in ("deterministic", "random", "nope"):
        assert [f.path for f in session.plan(AppState(model=model)).required] == ["minilm-l6/tokenizer.json"]


def test_budget_of_the_first_view(session):
    st = AppState()
    load(session, st, later=False)
    total = sum(session.catalogue.file(p).size for p in session.store._raw) + sum(
        session.catalogue.file(p).size for p in session.store._tensors)
    assert total <= 2 * 1024 * 1024, total


def test_steps_tab_asks_for_values_later(session):
    st = AppState(tab="steps")
    load(session, st, later=False)
    needs = session.plan(st)
    assert not needs.required and [f.path for f in needs.later] == ["minilm-l6/layer0.vo.json"]
    load(session, st)
    ctx = session.context(st)
    assert ctx.has_values and ctx.has_output


def test_deeper_layer_needs_full_blocks_below(session):
    st = AppState(layer=2)
    load(session, AppState(), later=False)
    paths = {f.path for f in session.plan(st).required}
    assert {"minilm-l6/layer0.vo.json", "minilm-l6/layer0.ffn.json", "minilm-l6/layer1.qk.json",
            "minilm-l6/layer1.vo.json", "minilm-l6/layer1.ffn.json", "minilm-l6/layer2.qk.json"} == paths


def test_temperature_head_tab_do_not_recompute(session, counts):
    st = AppState()
    load(session, st)
    base = session.context(st)
    assert counts["mha"] == 1 and counts["embed"] == 1 and session.stats["tokenize"] == 1
    for change in ({"head": 5}, {"tab": "heads"}, {"pinned_row": 2}, {"step": 4}):
        ctx = session.context(st.with_(**change))
        assert ctx.trace is base.trace
    hot = session.context(st.with_(temperature=4.0))
    assert counts["mha"] == 1 and session.stats["retemper"] == 1
    assert np.array_equal(hot.trace.scaled, base.trace.scaled)
    assert row_entropy_bits(hot.trace.probs[0]) > row_entropy_bits(base.trace.probs[0])
    again = session.context(st.with_(temperature=4.0, head=3))
    assert again.trace is hot.trace and session.stats["retemper"] == 1
    assert session.stats["tokenize"] == 1 and counts["embed"] == 1


def test_text_change_retokenizes_and_recomputes_once(session, counts):
    st = AppState()
    load(session, st)
    session.context(st)
    st2 = st.with_(text="A different sentence entirely.")
    load(session, st2)
    a = session.context(st2)
    b = session.context(st2.with_(head=2))
    assert a.trace is b.trace and session.stats["tokenize"] == 2 and counts["mha"] == 2
    assert a.tokens == ["[CLS]", "a", "different", "sentence", "entirely", ".", "[SEP]"]


def test_layer_change_computes_only_new_layers(session, counts):
    st = AppState()
    load(session, st.with_(layer=3))
    session.context(st.with_(layer=3))
    assert counts["mha"] == 4 and counts["embed"] == 1          # layers 0, 1, 2 (full) and 3
    session.context(st.with_(layer=1))
    session.context(st.with_(layer=2))
    assert counts["mha"] == 4 and counts["embed"] == 1


def test_causal_is_a_model_change(session, counts):
    st = AppState()
    load(session, st)
    plain = session.context(st)
    causal = session.context(st.with_(causal=True))
    assert counts["mha"] == 2 and causal.causal and not plain.causal
    assert np.allclose(np.triu(causal.trace.probs, k=1), 0)


def test_synthetic_sources_need_only_the_tokenizer(session):
    for model in ("deterministic", "random"):
        st = AppState(model=model, d_model=32, heads=8)
        fetched = load(session, st)
        assert set(fetched) <= {"minilm-l6/tokenizer.json"}
        ctx = session.context(st)
        assert ctx.n_heads == 8 and ctx.d_model == 32 and ctx.tokens[0] == "[CLS]"
    assert session.shape(AppState(model="random", heads=2)) == (1, 2)


def test_head_subsets_and_demo(session):
    for model, heads in (("minilm-l6-4head", 4), ("minilm-l6-2head", 2), ("minilm-l6-1head", 1),
                         ("demo-tiny", 4)):
        st = AppState(model=model)
        load(session, st)
        assert session.context(st).n_heads == heads


def test_normalise_clamps_to_the_model(session):
    load(session, AppState())
    st = session.normalise(AppState(model="minilm-l6-1head", layer=4, head=9, pinned_row=50))
    assert (st.layer, st.head, st.pinned_row) == (0, 0, None)
    assert session.normalise(AppState(model="no-such-model")).model == "minilm-l6"


def test_unbuilt_and_unknown_models_raise_clear_errors(session):
    load(session, AppState(), later=False)
    with pytest.raises(WeightFileError, match="distilbert"):
        session.plan(AppState(model="distilbert"))
    with pytest.raises(SessionError):
        session.shape(AppState(model="nope"))
    # A link naming such a model shows the first built one instead (the page adds a notice).
    assert session.normalise(AppState(model="distilbert", layer=3)).model == "minilm-l6"
    assert session.normalise(AppState(model="nope")).model == "minilm-l6"


def test_corrupt_file_is_rejected_and_named(session):
    st = AppState()
    tok = session.plan(st).required[0]
    session.add_file(tok.path, read_file(session.store, tok, MODELS))
    f = next(f for f in session.plan(st).required if f.path.endswith("layer0.qk.json"))
    data = bytearray(read_file(session.store, f, MODELS))
    data[100] ^= 1
    with pytest.raises(WeightFileError) as e:
        session.add_file(f.path, bytes(data))
    assert e.value.model == "minilm-l6" and e.value.path == f.path and "corrupt" in e.value.problem
    assert f.path in {g.path for g in session.plan(st).required}
    assert "HTTP 404" in str(session.fetch_error(f.path, "could not be downloaded (HTTP 404)"))


def test_truncation_is_reported(session):
    st = AppState(text=" ".join(["word%d" % i for i in range(400)]))
    load(session, st)
    ctx = session.context(st)
    assert ctx.n == 512 and ctx.dropped > 0 and ctx.tokens[-1] == "[SEP]"


def test_empty_text_is_cls_sep(session):
    st = AppState(text="")
    load(session, st)
    ctx = session.context(st)
    assert ctx.tokens == ["[CLS]", "[SEP]"] and ctx.dropped == 0


def test_entropy_and_shown_matrix(session):
    uniform = np.full((4, 4), 0.25)
    assert row_entropy_bits(uniform) == pytest.approx(2.0)
    assert row_entropy_bits(np.eye(3)) == pytest.approx(0.0)
    st = AppState()
    load(session, st)
    ctx = session.context(st)
    m, what = shown_matrix(ctx, "overview")
    assert np.allclose(m, ctx.trace.probs.mean(axis=0)) and "mean" in what
    m, what = shown_matrix(ctx, "heads")
    assert np.array_equal(m, ctx.trace.probs[0]) and what == "head 0"


# ---- the research tabs: every layer's attention, one layer at a time ---------------------------------------
def load_layers(session: Session, state: AppState):
    """Every file the research views need for all layers of the state's model: the plan's layer batches."""
    for _, batch in session.plan(state.with_(tab="model")).layers:
        for f in batch:
            session.add_file(f.path, read_file(session.store, f, MODELS))


def test_context_weights_carry_w_v_when_loaded(session):
    st = AppState(tab="steps")
    load(session, st, later=False)
    assert session.context(st).weights.v_weight is None        # V/O not fetched yet: Q/K only
    load(session, st)
    ctx = session.context(st)
    assert ctx.weights.v_weight is not None and ctx.weights.o_weight is not None
    assert ctx.weights.v_weight.shape == (384, 384)


def test_research_tabs_fill_attentions_one_layer_at_a_time(session, counts):
    st = AppState(tab="model")
    load(session, st)
    ctx = session.context(st, new_layers=0)
    assert sorted(ctx.attentions) == [0] and sorted(ctx.layer_attentions()) == [0]
    ctx = session.context(st, new_layers=1)
    assert sorted(ctx.attentions) == [0], "layer 1's files are not in the store yet"
    load_layers(session, st)
    seen = []
    for _ in range(5):
        ctx = session.context(st, new_layers=1)
        seen.append(sorted(ctx.attentions))
    assert seen == [[0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5]]
    mha = counts["mha"]
    again = session.context(st.with_(head=3, tab="stats"), new_layers=0)   # nothing new to compute
    assert sorted(again.attentions) == list(range(6)) and counts["mha"] == mha
    for layer in range(6):
        ref = session.source(st).encoder.attentions(session.encode(st).ids, [layer])[layer]
        assert np.array_equal(again.attentions[layer], ref)
    # Other tabs carry no other layers (nothing computed for them).
    assert session.context(st.with_(tab="heads")).attentions == {}


def test_research_context_at_a_deep_layer_counts_the_layers_below_as_computed(session):
    st = AppState(tab="rollout", layer=3)
    load(session, st)
    load_layers(session, st)
    ctx = session.context(st, new_layers=0)
    assert sorted(ctx.attentions) == [0, 1, 2, 3]              # the forward pass to layer 3 made them
    assert sorted(session.context(st, new_layers=None).attentions) == list(range(6))


def test_a_new_text_forgets_the_other_layers(session):
    st = AppState(tab="model")
    load(session, st)
    load_layers(session, st)
    assert len(session.context(st).attentions) == 6
    st2 = st.with_(text="Something else.")
    load(session, st2)
    ctx = session.context(st2, new_layers=0)
    assert sorted(ctx.attentions) == [0] and ctx.attentions[0].shape[-1] == len(ctx.tokens)


def test_view_state_reaches_the_context(session):
    st = AppState(tab="lines", heads_shown=(1, 4), sort_by="entropy", sort_desc=True)
    load(session, st)
    ctx = session.context(st)
    assert ctx.heads_shown == [1, 4] and ctx.sort_by == "entropy" and ctx.sort_desc
    assert session.context(AppState()).heads_shown is None


def test_shown_matrix_of_the_research_tabs(session):
    st = AppState(tab="lines", heads_shown=(1, 4))
    load(session, st)
    load_layers(session, st)
    ctx = session.context(st)
    m, what = shown_matrix(ctx, "lines")
    assert np.allclose(m, ctx.trace.probs[[1, 4]].mean(axis=0)) and what == "mean of heads 1, 4"
    m, what = shown_matrix(ctx, "neuron")
    assert m.shape == (1, ctx.n) and np.array_equal(m[0], ctx.trace.probs[0, 1]) and "query 'the'" in what
    ctx = session.context(st.with_(tab="rollout"))
    m, what = shown_matrix(ctx, "rollout")
    from pyapp.core.analysis import rollout

    assert np.allclose(m, rollout([ctx.attentions[k] for k in range(6)])[-1]) and what == "rollout of layers 0–5"
    m, what = shown_matrix(ctx, "model")
    assert np.allclose(m, ctx.average_probs()) and what == "mean of 12 heads"
