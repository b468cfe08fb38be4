"""AppState: validation, clamping, the log-scale temperature slider and the URL round trip."""

from __future__ import annotations

import math

import pytest

from pyapp.app.state import (
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


# ---- every field in the URL, and links that cannot be used ---------------------------------------------
def test_every_tab_is_a_url_state():
    from pyapp.app.state import TAB_VIEWS, TABS

    assert set(TABS) == set(TAB_VIEWS) and {"model", "lines", "neuron", "rollout", "stats"} <= set(TABS)
    for tab in TABS:
        s = AppState(tab=tab)
        assert AppState.from_query(s.to_query()) == s


@pytest.mark.parametrize("field,value", [
    ("text", "naïve <tag> & \"quotes\" 😀\nnew line"), ("model", "demo-tiny"), ("layer", 4), ("head", 11),
    ("temperature", 0.3162), ("causal", True), ("tab", "stats"), ("step", 9), ("pinned_row", 0), ("arch", "transformer"),
    ("d_model", 384), ("heads", 8), ("seed", 7), ("heads_shown", (0, 3, 11)), ("heads_shown", ()),
    ("sort_by", "entropy_norm"), ("sort_desc", True)])
def test_every_field_round_trips(field, value):
    from pyapp.app.state import parse_query

    s = AppState(**{field: value})
    q = s.to_query()
    assert field + "=" in q
    back, problems = parse_query(q)
    assert back == s and getattr(back, field) == value and problems == []


def test_heads_shown_is_normalised():
    assert AppState(heads_shown=[5, 1, 5]).clamped().heads_shown == (1, 5)
    assert AppState(heads_shown=(1, 9)).clamped(n_heads=4).heads_shown == (1,)
    assert AppState.from_query("heads_shown=3,1").heads_shown == (1, 3)
    assert AppState().heads_shown is None and "heads_shown" not in AppState().to_query()


@pytest.mark.parametrize("query,key", [
    ("layer=abc", "layer=abc"), ("layer=2.5", "layer=2.5"), ("head=-1", "head=-1"), ("temperature=inf", "temperature=inf"),
    ("temperature=0", "temperature=0 (allowed 0.1..10)"), ("temperature=x", "temperature=x"),
    ("causal=maybe", "causal=maybe"), ("tab=<script>", "tab=<script> (one of"), ("step=12", "step=12 (allowed 1..11)"),
    ("pinned_row=-3", "pinned_row=-3"), ("arch=tower", "arch=tower (one of"), ("d_model=100", "d_model=100"),
    ("heads_shown=1.x", "heads_shown=1.x"), ("sort_by=nope", "sort_by=nope (one of"), ("seed=-5", "seed=-5"),
    ("sort_desc=2", "sort_desc=2")])
def test_malformed_values_fall_back_and_are_named(query, key):
    from pyapp.app.state import parse_query, query_notice

    state, problems = parse_query("?" + query + "&model=demo-tiny")
    assert state.model == "demo-tiny"            # the good values of the link are kept
    assert len(problems) == 1 and problems[0].startswith(key), problems
    notice = query_notice(problems)
    assert key in notice and notice.startswith("This link had values")
    name = query.split("=")[0]
    assert getattr(state, name) == getattr(AppState().clamped(), name) or name in ("temperature", "step", "d_model")  # clamped


def test_good_links_have_no_notice():
    from pyapp.app.state import parse_query, query_notice

    assert parse_query("") == (AppState(), [])
    assert parse_query("?utm_source=x&tab=model&layer=3")[1] == []      # unknown keys are ignored
    assert query_notice([]) == ""
    assert parse_query("%ZZ=%%&layer=%E0%A4%A")[0] == AppState()           # garbage escapes never raise


def test_fitted_problems_name_what_the_model_changed():
    from pyapp.app.state import fitted_problems

    asked = AppState(model="nope", layer=9, head=30, pinned_row=40, heads_shown=(2, 20))
    shown = AppState(model="minilm-l6", layer=5, head=11, pinned_row=None, heads_shown=(2,))
    q = "model=nope&layer=9&head=30&pinned_row=40&heads_shown=2.20"
    notes = fitted_problems(asked, shown, q)
    assert notes == ["model=nope (not available here)", "layer=9 (the model has fewer layers)",
                     "head=30 (the model has fewer heads)", "heads_shown=2.20 (the model has fewer heads)",
                     "pinned_row=40 (the text has fewer tokens)"]
    assert fitted_problems(asked, shown, "tab=model") == []       # only what the link asked for
    assert fitted_problems(shown, shown, q) == []


# ---- issue 10: links that always reload, never raise, and read the same on every Python ----------------
CJK = "注意力机制让每个词看见其他的词。" * 488          # 7,808 CJK characters: a 70 KB link in full


def test_a_text_too_long_for_a_link_is_left_out_and_said_so():
    from urllib.parse import quote_plus

    from pyapp.app.state import (
        LINK_TEXT_LEFT_OUT,
        MAX_LINK_QUERY,
        TEXT_LEFT_OUT,
        TEXT_LEFT_OUT_NOTE,
        parse_query,
        query_notice,
        share_query,
    )

    assert len(quote_plus(CJK)) > 64 * 1024                      # what the page used to write
    s = AppState(text=CJK, layer=3, head=2, temperature=2.5, causal=True, tab="heads")
    q, left_out = share_query(s)
    assert left_out and len(q) <= MAX_LINK_QUERY and "text=" not in q and TEXT_LEFT_OUT + "=1" in q
    assert s.to_query() == q                                     # every link the app writes is that one
    back, problems = parse_query("?" + q)
    assert back == s.with_(text=AppState().text)                 # the settings survive, the text is the default
    assert problems == [TEXT_LEFT_OUT_NOTE]
    notice = query_notice(problems)
    assert "holds the settings but not the text" in notice and "cannot use" not in notice
    assert "settings but not the text" in LINK_TEXT_LEFT_OUT
    both = query_notice(problems + ["layer=abc"])
    assert "settings but not the text" in both and "layer=abc" in both


def test_the_longest_text_that_fits_is_kept_and_one_more_character_is_not():
    from pyapp.app.state import MAX_LINK_QUERY, share_query

    fits = "a" * (MAX_LINK_QUERY - len("text="))
    q, left_out = share_query(AppState(text=fits))
    assert not left_out and len(q) == MAX_LINK_QUERY and AppState.from_query(q).text == fits
    q, left_out = share_query(AppState(text=fits + "a"))
    assert left_out and q == "text_left_out=1"
    q, left_out = share_query(AppState(text="字" * 600, tab="stats"))       # 9 bytes a character once escaped
    assert not left_out and AppState.from_query(q).text == "字" * 600


def test_a_hostile_state_still_gets_a_short_link():
    from pyapp.app.state import MAX_LINK_QUERY, share_query

    q, left_out = share_query(AppState(text="x", model="m" * 100000, layer=2))
    assert len(q) <= MAX_LINK_QUERY and not left_out and "layer=2" in q and "text=x" in q
    q, left_out = share_query(AppState(text="y" * 9000, model="m" * 100000, layer=2))
    assert len(q) <= MAX_LINK_QUERY and left_out and "layer=2" in q


@pytest.mark.parametrize("text,linked", [
    ("abc \ud800 def", "abc \ufffd def"), ("\udc00", "\ufffd"), ("a\ud83d\ude00b", "a\U0001F600b"),  # a pair joins
    ("\ud800\ud800\udc00", "\ufffd\U00010000"), ("end \udbff", "end \ufffd")])
def test_lone_surrogates_never_break_the_link(text, linked):
    from pyapp.app.state import parse_query, share_query

    s = AppState(text=text, layer=1)
    q, left_out = share_query(s)                                  # used to raise UnicodeEncodeError
    assert not left_out and q.isascii()
    back, problems = parse_query(q)
    assert back.text == linked and back.layer == 1 and problems == []
    assert s.to_query() == q


def test_semicolons_and_escapes_are_read_the_same_on_every_python():
    from pyapp.app.state import parse_query, query_pairs

    assert AppState.from_query("?text=Hello;world").text == "Hello;world"
    assert AppState.from_query("text=a+b%2Bc%3Bd&layer=2").text == "a b+c;d"
    assert query_pairs("?a=1&&b&c=%ZZ&d=%E0%A4%A&=x") == [("a", "1"), ("b", ""), ("c", "%ZZ"), ("d", "\ufffd%A"),
                                                            ("", "x")]
    state, problems = parse_query("text=%FF%FEhi&layer=1")           # invalid UTF-8: replaced, never raised
    assert state.text == "\ufffd\ufffdhi" and state.layer == 1 and problems == []


@pytest.mark.parametrize("query,note", [
    ("layer=1_0", "layer=1_0"), ("layer=\u0663", "layer=\u0663"), ("head=\uff13", "head=\uff13"),
    ("layer= 3", "layer= 3"), ("layer=%2B3", "layer=+3"), ("layer=+3", "layer= 3"), ("step=0x3", "step=0x3"),
    ("layer=99999999999999999999999", "layer=9999999"), ("temperature=1_0", "temperature=1_0"),
    ("temperature=\u0661.\u0665", "temperature=\u0661.\u0665"), ("temperature=nan", "temperature=nan"),
    ("temperature=infinity", "temperature=infinity"), ("temperature=1e999", "temperature=1e999"),
    ("temperature= 2", "temperature= 2"), ("heads_shown=1_0.2", "heads_shown=1_0.2"),
    ("heads_shown=\u0663", "heads_shown=\u0663"), ("pinned_row=\u0663", "pinned_row=\u0663")])
def test_numbers_are_ascii_digits_only(query, note):
    from pyapp.app.state import parse_query

    state, problems = parse_query(query + "&tab=model")
    key = query.split("=")[0]
    assert state.tab == "model" and getattr(state, key) == getattr(AppState(), key)
    assert len(problems) == 1 and problems[0].startswith(note), problems


def test_a_huge_layer_is_echoed_exactly_not_as_a_float():
    from pyapp.app.state import fitted_problems, parse_query

    q = "layer=9999999999&head=1234567891"
    asked, problems = parse_query(q)
    assert (asked.layer, asked.head, problems) == (9999999999, 1234567891, [])
    notes = fitted_problems(asked, asked.with_(layer=5, head=11), q)
    assert notes == ["layer=9999999999 (the model has fewer layers)", "head=1234567891 (the model has fewer heads)"]


@pytest.mark.parametrize("query,key,first", [
    ("layer=2&layer=4", "layer", 2), ("layer=abc&layer=4", "layer", 0), ("layer=4&layer=abc", "layer", 4),
    ("text=one&text=two", "text", "one"), ("temperature=2&temperature=3", "temperature", 2.0),
    ("causal=1&causal=0", "causal", True), ("heads_shown=1&heads_shown=2.3", "heads_shown", (1,)),
    ("tab=stats&tab=heads", "tab", "stats"), ("pinned_row=&pinned_row=2", "pinned_row", None)])
def test_the_first_occurrence_of_a_key_wins_for_every_field(query, key, first):
    from pyapp.app.state import parse_query, query_notice

    state, problems = parse_query(query)
    assert getattr(state, key) == first
    second = query.split("&")[1]
    assert problems[-1] == "%s (repeated: the first %s= is used)" % (second, key)
    assert second in query_notice(problems)


def test_floats_in_ascii_forms_are_read():
    from pyapp.app.state import parse_query

    for raw, t in (("2.5", 2.5), (".5", 0.5), ("3.", 3.0), ("2e-1", 0.2), ("%2B4", 4.0), ("1E%2B0", 1.0)):
        state, problems = parse_query("temperature=" + raw)
        assert state.temperature == pytest.approx(t) and problems == [], raw
