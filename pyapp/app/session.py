"""Session: from the app state to a ViewContext, doing only the work a change requires. Pure Python.

The session holds the catalogue, the weight store, the tokenizer and the model sources. It never does I/O:
the shell asks ``plan(state)`` which files a state needs (``FilePlan``: before the next draw, after it, and
per layer for the tabs that read every layer), fetches them however it can (the page: ``fetch``; the CLI and
``pyapp.figure``: the disk), hands them to ``add_file`` and then asks for ``context(state)``.

Caching (what each change costs; every cache is a bounded ``core.lru.LRU``, the big ones by bytes):

- text              -> tokenization is cached by (text, max_length); a new text re-tokenizes once.
- model / causal    -> hidden states and Q K^T live in the Encoder's caches (keyed by ids and causal).
- layer             -> the Encoder computes only the layers not yet computed for these ids.
- temperature       -> one softmax of the cached scaled scores (``trace.with_temperature``), cached too.
- head, tab, step, pinned row -> nothing is recomputed: the same trace, only a new ViewContext.
- every-layer tabs  -> (``Tab.all_layers``: model grid, rollout, head statistics) also get every layer's
                     attention in ``ctx.attentions`` (``layer_attentions``, the one entry point):
                     ``context(state, new_layers=k)`` computes at most k layers not computed yet, so the page
                     can add one layer per frame.  Each layer is computed once and kept as its digest
                     (``core.analysis.LayerDigest``: head average, statistics, thumbnails; 2.7 MB for
                     SmolLM2's 9 heads at 512 tokens instead of 9.4 MB of attention plus a 46 MB trace), in
                     a byte-budgeted cache, streaming: a layer's (heads, n, n) arrays live in the Encoder's
                     byte-budgeted trace cache only (``LazyModel.TRACE_BYTES``), and ``ctx.attentions[k]``
                     recomputes layer k's attention from the cached hidden states if they are gone.

When the ids of a model change, that model's encoder cache is cleared so editing text never piles up memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from ..core.analysis import LayerDigest, digest, product, residual_attention
from ..core.attention import AttentionTrace
from ..core.catalogue import Catalogue, CatalogueError, FileEntry, ModelEntry
from ..core.lru import LRU, nbytes
from ..core.sources import SYNTHETIC_KINDS, ModelSource, SyntheticSpec, load_tokenizer, make_source
from ..core.store import WeightStore
from ..core.tokenizer import Encoding
from ..core.weights import WeightFileError
from .context import ViewContext
from .prediction import Prediction, Sampler, candidates
from .state import DEFAULT_MODEL, AppState
from .stepping import step_keys
from .tabs import tab
from .tokens import labels

MAX_TOKENS = 512
DIGEST_BYTES = 160 * 2**20     # layer digests: every layer of SmolLM2 (30) or GPT-2 (12 x 12 heads) at 512 tokens
TEMPERED_BYTES = 96 * 2**20    # what a new temperature adds to a trace (logits, probs, head outputs)
ROLLOUT_BYTES = 32 * 2**20     # rollout products of layers 0..j-1 at T = 1: (n, n) float64, 2 MB at 512 tokens
TOKENIZER_MODEL = DEFAULT_MODEL        # synthetic sources and models without their own tokenizer use it
SYNTHETIC = SYNTHETIC_KINDS


@dataclass
class ModelOption:
    id: str
    label: str
    description: str
    available: bool = True
    synthetic: bool = False


@dataclass
class FilePlan:
    """The files a state still needs, in the order to fetch them.

    ``required``: before its next draw (the tokenizer first, then the embedding rows and the shown layer's
    Q/K with the full blocks below it); ``later``: after that draw (the shown layer's V/O on the tabs that
    show values); ``layers``: for the tabs that read every layer, ``(layer, files)`` bottom up for each layer
    not computed yet (a batch may be empty: its files are in, only the computation is left)."""
    required: List[FileEntry]
    later: List[FileEntry] = field(default_factory=list)
    layers: List[Tuple[int, List[FileEntry]]] = field(default_factory=list)

    def files(self) -> List[FileEntry]:
        """Every file of the plan, in fetching order."""
        return self.required + self.later + [f for _, batch in self.layers for f in batch]

    def __bool__(self) -> bool:
        return bool(self.required or self.later or self.layers)


class SessionError(Exception):
    """A problem the user should read (unknown model, no tokenizer, an unreadable catalogue, ...)."""


class Session:
    def __init__(self, catalogue: Optional[Catalogue], tokenizer_factory=None, max_tokens: int = MAX_TOKENS,
                 problem: str = ""):
        """``tokenizer_factory(bytes) -> tokenizer`` (default: core.tokenizer.WordPieceTokenizer.from_json).
        ``problem``: why there is no catalogue (e.g. models/index.json could not be parsed): every state that
        needs a tokenizer then raises a SessionError saying so."""
        self.catalogue = catalogue if catalogue is not None else Catalogue([])
        self.problem = problem
        self.store = WeightStore(self.catalogue)
        self.max_tokens = max_tokens
        self._tokenizer_factory = tokenizer_factory
        self._tokenizers: LRU[Any] = LRU(4)             # tokenizer path -> tokenizer
        self._encodings: LRU[Any] = LRU(64)             # (tokenizer path, text, max_len) -> Encoding
        self._sources: LRU[ModelSource] = LRU(16)       # source id -> ModelSource
        self._last_ids: LRU[Tuple[int, ...]] = LRU(16)  # source id -> ids of its cached work
        self._tempered: LRU[Any] = LRU(32, maxbytes=TEMPERED_BYTES, sizeof=_tempered_nbytes)
        # (source, ids, layer, causal, values, T) -> trace
        self._digests: LRU[LayerDigest] = LRU(maxbytes=DIGEST_BYTES)
        # (source, ids, causal, layer) -> LayerDigest at T = 1;  (..., layer, T) -> the shown layer's at T != 1
        self._rollouts: LRU[np.ndarray] = LRU(maxbytes=ROLLOUT_BYTES)  # (source, ids, causal, j) -> (n, n)
        self._logits: LRU[np.ndarray] = LRU(4)          # (source, ids) -> next-token logits (vocab,)
        self.stats = {"tokenize": 0, "context": 0, "retemper": 0}

    # ---- what can be chosen ------------------------------------------------------------------------
    def model_options(self) -> List[ModelOption]:
        out = []
        for m in self.catalogue:
            shape = "%d layers × %d heads, d_model %d" % (m.n_layers, m.n_heads, m.d_model)
            label = m.name if m.built else "%s (weights not built)" % m.name
            out.append(ModelOption(m.id, label, ("%s. %s" % (shape, m.description)).strip(), m.built))
        tok = self._tokenizer_entry() is not None
        out.append(ModelOption("deterministic", "Deterministic (hash embeddings + seeded weights)",
                               "Same numbers on every run: SHA-256 token vectors, fixed-seed Xavier weights.",
                               tok, True))
        out.append(ModelOption("random", "Random (Xavier)",
                               "Untrained: Xavier-uniform embeddings and weights from a seed.", tok, True))
        return out

    def shape(self, state: AppState) -> Tuple[int, int]:
        """(n_layers, n_heads) of the state's model."""
        if state.model in SYNTHETIC:
            return 1, self._spec(state).n_heads
        e = self._entry(state.model)
        return e.n_layers, e.n_heads

    def normalise(self, state: AppState) -> AppState:
        """The state clamped to its model (an unknown model, or one whose files are not shipped -> the first
        built one: a shared link may name a model this copy of the site does not have)."""
        if self.problem:
            raise SessionError(self.problem)          # no catalogue: the state stays as asked until Retry
        if state.model not in SYNTHETIC and (state.model not in self.catalogue
                                             or not self.catalogue.get(state.model).built):
            first = next((m.id for m in self.catalogue if m.built), "deterministic")
            state = state.with_(model=first)
        n_layers, n_heads = self.shape(state.clamped())
        n = None
        enc = self.cached_encoding(state.clamped())
        if enc is not None:
            n = len(enc.ids)
        out = state.clamped(n_layers=n_layers, n_heads=n_heads, n_tokens=n)
        steps = self.n_steps(out)
        return out.with_(step=steps) if out.step > steps else out

    # ---- files ----------------------------------------------------------------------------------
    def plan(self, state: AppState) -> FilePlan:
        """The files missing for what ``state`` shows (see FilePlan): first the tokenizer, then (once there
        are ids) the weights. Raises SessionError / core's CatalogueError for a model that cannot be shown."""
        tok = self._tokenizer_file(state)
        if not self.store.has(tok.path):
            return FilePlan([tok] + self._text_free(state, tok))
        if state.model in SYNTHETIC:
            return FilePlan([])
        entry = self._built_entry(state.model)
        ids = self.encode(state).ids
        layer = min(state.layer, entry.n_layers - 1)
        required = self.store.missing(entry.id, ids, layer, ("qk",))
        listed = {f.path for f in required}

        def new(files: List[FileEntry]) -> List[FileEntry]:
            out = [f for f in files if f.path not in listed]
            listed.update(f.path for f in out)
            return out

        the_tab = tab(state.tab)
        later = new(self.store.missing(entry.id, ids, layer, ("vo",))) if the_tab.values else []
        if the_tab.next_token and entry.config.is_decoder:     # every block + the LM head: after the first draw
            later += new(self.store.missing(entry.id, ids, next_token=True))
        layers = []
        if the_tab.all_layers:
            base = (entry.id, tuple(int(i) for i in ids), bool(state.causal) or entry.config.causal_only)
            for k in range(layer + 1, entry.n_layers):      # layers 0..layer: the forward pass computes them
                if base + (k,) not in self._digests:
                    layers.append((k, new(self.store.missing(entry.id, ids, k, ("qk",)))))
        return FilePlan(required, later, layers)

    def _text_free(self, state: AppState, tok: FileEntry) -> List[FileEntry]:
        """What the shown layer needs whatever the text (the embedding norm, the layer's Q/K and the blocks
        below it): they download beside the tokenizer; only the word and position rows wait for the ids. Nothing
        for a model that cannot be shown (the next plan says why, once the tokenizer is in)."""
        if state.model in SYNTHETIC or state.model not in self.catalogue:
            return []
        try:
            entry = self._built_entry(state.model)
            layer = min(max(state.layer, 0), entry.n_layers - 1)
            return [f for f in self.store.missing(entry.id, (), layer, ("qk",)) if f.path != tok.path]
        except (SessionError, CatalogueError):
            return []

    def later_label(self, state: AppState, plan: FilePlan) -> str:
        """What a plan's ``later`` files are, for the page's status ("V/O weights of layer 0", ...)."""
        if not plan.later:
            return ""
        if tab(state.tab).next_token and len(plan.later) > 2:
            size = sum(f.size for f in plan.later)
            return "the language-model head and every layer (%d files, %.1f MB)" % (len(plan.later), size / 1e6)
        return "V/O weights of layer %d" % state.layer

    # ---- next-token prediction ---------------------------------------------------------------------
    def prediction(self, state: AppState, src: ModelSource, ids: Tuple[int, ...]) -> Prediction:
        """The next-token tab's data: the sampler's candidates once every file of the LM head is in (the
        logits are computed once per text), else what is still loading; an encoder has none."""
        sampler = Sampler(state.sample_t, state.top_k, state.top_p)
        if src.synthetic or not src.config.is_decoder:
            return Prediction(sampler, decoder=False)
        missing = self.store.missing(src.id, ids, next_token=True)
        if missing:
            total = sum(f.size for f in src.entry.files_for(ids, next_token=True))
            left = sum(f.size for f in missing)
            return Prediction(sampler, loading="loading the language-model head and every layer: %.1f of %.1f MB"
                              % ((total - left) / 1e6, total / 1e6))
        key = (src.id, ids)
        logits = self._logits.get(key)
        if logits is None:
            logits = self._logits[key] = src.encoder.next_token_logits(ids)
        tok = src.tokenizer
        return candidates(logits, lambda i: tok.decode([i]), tok.id_to_token, sampler)

    def n_steps(self, state: AppState) -> int:
        """The Step-by-step tab's number of steps for the state's model (``app/stepping.py``)."""
        if state.model in SYNTHETIC or state.model not in self.catalogue:
            return len(step_keys())
        cfg = self.catalogue.get(state.model).config
        return len(step_keys(cfg.arch, bool(cfg.rope_theta)))

    def add_file(self, path: str, data: bytes) -> FileEntry:
        """Verify and keep a fetched file; raises WeightFileError (naming model and file)."""
        return self.store.add(path, data)

    def fetch_error(self, path: str, problem: str) -> WeightFileError:
        return self.store.error(path, problem)

    # ---- tokens ---------------------------------------------------------------------------------
    def encode(self, state: AppState):
        tok_file = self._tokenizer_file(state)
        key = (tok_file.path, state.text, self._max_len(state))
        enc = self._encodings.get(key)
        if enc is None:
            tokenizer = self._tokenizer(tok_file)
            enc = tokenizer.encode(state.text, max_length=key[2])
            kind = self._tokenizer_kind(tok_file)
            if kind != "wordpiece":  # the page labels BPE tokens by their text ("␣cat", not "Ġcat")
                enc = Encoding(labels(enc.tokens, kind), enc.ids, enc.offsets, enc.dropped)
            self.stats["tokenize"] += 1
            self._encodings[key] = enc
        return enc

    def cached_encoding(self, state: AppState):
        """The encoding of the state's text, or None while its tokenizer is not in the store."""
        try:
            tok_file = self._tokenizer_file(state)
        except SessionError:
            return None
        if not self.store.has(tok_file.path):
            return None
        return self.encode(state)

    # ---- the view context ------------------------------------------------------------------------
    def source(self, state: AppState) -> ModelSource:
        if state.model in SYNTHETIC:
            spec = self._spec(state)
            sid = spec.id
            if sid not in self._sources:
                self._sources[sid] = make_source(spec, self._tokenizer(self._tokenizer_file(state)))
            return self._sources[sid]
        entry = self._built_entry(state.model)
        if entry.id not in self._sources:
            tok = self._tokenizer(self._tokenizer_file(state))
            self._sources[entry.id] = make_source(entry, tok, self.store)
        return self._sources[entry.id]

    def context(self, state: AppState, loading: str = "", new_layers: Optional[int] = None,
                hover_token: Optional[int] = None, hover_side: str = "left") -> ViewContext:
        """The ViewContext of ``state``. Raises core's WeightsMissing if ``plan(state).required`` is not in.

        For a tab whose view reads every layer (``all_layers``), ``ctx.attentions`` holds the layers computed
        so far plus at most ``new_layers`` more whose files are in the store (None: all of those).
        ``hover_token`` / ``hover_side``: the page-only view state (the head view's pointed token)."""
        self.stats["context"] += 1
        enc = self.encode(state)
        src = self.source(state)
        ids = tuple(int(i) for i in enc.ids)
        if self._last_ids.get(src.id) != ids:
            src.encoder.clear()                   # forget the previous text's hidden states
            self._tempered.drop(lambda k: k[0] != src.id)
            self._digests.drop(lambda k: k[0] != src.id)
            self._rollouts.drop(lambda k: k[0] != src.id)
            self._last_ids[src.id] = ids
        cfg = src.config
        layer = min(state.layer, cfg.n_layers - 1)
        trace = self._trace(src, ids, layer, state.temperature, state.causal)
        weights = src.encoder.attention_weights(layer, values=trace.v is not None)   # W_V, W_O when loaded
        pinned = state.pinned_row if state.pinned_row is not None and state.pinned_row < len(ids) else None
        ctx = ViewContext(
            tokens=list(enc.tokens), trace=trace, weights=weights, offsets=list(enc.offsets), ids=list(ids),
            text=state.text, layer=layer, n_layers=cfg.n_layers, head=min(state.head, cfg.n_heads - 1),
            model_name=src.name, step=state.step, pinned_row=pinned, arch=state.arch, loading=loading,
            dropped=int(getattr(enc, "dropped", 0)), model_id=src.id, tab=state.tab,
            heads_shown=None if state.heads_shown is None else list(state.heads_shown),
            sort_by=state.sort_by, sort_desc=state.sort_desc, hover_token=hover_token, hover_side=hover_side,
            model_arch=cfg.arch, causal_only=cfg.causal_only,
        )
        if tab(state.tab).next_token:
            ctx.prediction = self.prediction(state, src, ids)
        if self.all_layers(state):
            ctx.attentions = self.layer_attentions(state, new_layers, computed=layer)
        return ctx

    def all_layers(self, state: AppState) -> bool:
        """Whether the state's tab draws a view that reads every layer's attention."""
        return tab(state.tab).all_layers

    def layer_attentions(self, state: AppState, new_layers: Optional[int] = None,
                         computed: int = -1) -> "LayerAttentions":
        """THE entry point for every layer's attention: layer -> (heads, n, n) at T = 1 of every layer computed so
        far for the state's text, model and mask, after computing (bottom up) at most ``new_layers`` more whose
        files are in the store (None: all of them). Layers 0..``computed`` do not count: the forward pass to
        a shown layer has computed them (the context passes its layer). The layers run as trained (T = 1); the
        shown layer's temperature lens is the trace.

        A layer computed here is kept as its LayerDigest only (what the views draw); the mapping returned
        gives each layer's digest (``digest(k)``) and, when indexed, its full attention (from the Encoder's
        trace cache, or recomputed from the cached hidden state)."""
        src = self.source(state)
        enc = self.encode(state)
        ids = tuple(int(i) for i in enc.ids)
        causal = bool(state.causal) or src.config.causal_only
        view = LayerAttentions(self, src, ids, causal, list(enc.tokens))
        budget = new_layers
        stop = False
        for layer in range(src.config.n_layers):
            if view.key(layer) in self._digests:
                view.layers.append(layer)
                continue
            free = layer <= computed
            if stop or (budget is not None and budget <= 0 and not free) or not self._layer_ready(state, layer):
                stop = True
                continue
            view.digest(layer)                         # computes the layer's attention and keeps its digest
            view.layers.append(layer)
            budget = budget if budget is None or free else budget - 1
        return view

    def _layer_ready(self, state: AppState, layer: int) -> bool:
        """Whether every file ``layer``'s attention needs is in the store."""
        if state.model in SYNTHETIC:
            return True
        return not self.store.missing(state.model, self.encode(state).ids, layer, ("qk",))

    def _trace(self, src: ModelSource, ids: Tuple[int, ...], layer: int, temperature: float, causal: bool):
        base = src.encoder.trace(ids, layer, 1.0, causal)          # cached by the encoder
        if temperature == 1.0:
            return base
        key = (src.id, ids, layer, bool(causal), base.v is not None, float(temperature))
        trace = self._tempered.get(key)
        if trace is None:
            trace = base.with_temperature(temperature)
            self.stats["retemper"] += 1
            self._tempered[key] = trace
        return trace

    # ---- helpers -------------------------------------------------------------------------------------
    def _max_len(self, state: AppState) -> int:
        if state.model in SYNTHETIC:
            return self.max_tokens
        e = self._entry(state.model)
        return min(self.max_tokens, e.max_positions)

    def _entry(self, model_id: str) -> ModelEntry:
        if model_id not in self.catalogue:
            raise SessionError(self.problem or "unknown model %r" % model_id)
        return self.catalogue.get(model_id)

    def _built_entry(self, model_id: str) -> ModelEntry:
        # core's ModelNotBuiltError (both a CatalogueError and a WeightFileError) if its files are not shipped
        return self.store.entry(self._entry(model_id).id)

    def _spec(self, state: AppState) -> SyntheticSpec:
        return SyntheticSpec(kind=state.model, d_model=state.d_model, n_heads=state.heads, seed=state.seed)

    def _tokenizer_entry(self) -> Optional[ModelEntry]:
        if TOKENIZER_MODEL in self.catalogue and self.catalogue.get(TOKENIZER_MODEL).tokenizer_path:
            return self.catalogue.get(TOKENIZER_MODEL)
        return None

    def _tokenizer_file(self, state: AppState) -> FileEntry:
        if state.model not in SYNTHETIC and state.model in self.catalogue:
            e = self.catalogue.get(state.model)
            if e.tokenizer_path and self.catalogue.file(e.tokenizer_path) is not None:
                return self.catalogue.file(e.tokenizer_path)
        e = self._tokenizer_entry()
        if e is None:
            raise SessionError(self.problem or "no tokenizer: models/index.json does not list the MiniLM tokenizer")
        return e.tokenizer_file()

    def _tokenizer(self, f: FileEntry):
        tok = self._tokenizers.get(f.path)
        if tok is None:
            factory = self._tokenizer_factory
            data = self.store.data(f.path)
            tok = factory(data) if factory is not None else load_tokenizer(self._tokenizer_kind(f), data)
            self._tokenizers[f.path] = tok
        return tok

    def _tokenizer_kind(self, f: FileEntry) -> str:
        """The catalogue's kind of a tokenizer file ("wordpiece" | "bpe")."""
        owner = self.catalogue.get(f.model) if f.model in self.catalogue else None
        return owner.tokenizer_kind if owner is not None else "wordpiece"


def _tempered_nbytes(trace: AttentionTrace) -> int:
    """What ``with_temperature`` adds to the T = 1 trace it shares everything else with."""
    return nbytes([trace.logits, trace.probs, trace.head_outputs, trace.concat, trace.output])


class LayerAttentions(Mapping):
    """layer -> (heads, n, n) attention at T = 1 of the layers computed so far, for one text, model and mask.

    Holds no attention: each layer's ``LayerDigest`` is in the session's byte-budgeted cache (``digest``), and
    ``self[k]`` asks the Encoder for layer k's attention (its trace cache, or one attention recomputed from
    the cached hidden state).  ``shown_digest`` is the digest of the shown layer's trace (cached per
    temperature)."""

    def __init__(self, session: Session, src: ModelSource, ids: Tuple[int, ...], causal: bool, tokens: List[str]):
        self.session, self.src, self.ids, self.causal, self.tokens = session, src, ids, causal, tokens
        self.layers: List[int] = []

    def key(self, layer: int, temperature: float = 1.0) -> Tuple[Any, ...]:
        base = (self.src.id, self.ids, self.causal, int(layer))
        return base if temperature == 1.0 else base + (float(temperature),)

    def __getitem__(self, layer: int) -> np.ndarray:
        if int(layer) not in self.layers:
            raise KeyError(layer)
        return self.src.encoder.attentions(self.ids, [int(layer)], 1.0, self.causal)[int(layer)]

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.layers))

    def __len__(self) -> int:
        return len(self.layers)

    def __contains__(self, layer: object) -> bool:
        return layer in self.layers

    def digest(self, layer: int) -> LayerDigest:
        """Layer ``layer``'s digest at T = 1 (computed from its attention the first time, then cached)."""
        cache = self.session._digests
        key = self.key(layer)
        d = cache.get(key)
        if d is None:
            probs = self.src.encoder.attentions(self.ids, [int(layer)], 1.0, self.causal)[int(layer)]
            d = digest(probs, self.tokens, self.causal)
            cache[key] = d
        return d

    def rollout(self, digests: Mapping[int, LayerDigest], k: int, shown: int, temperature: float) -> np.ndarray:
        """The rollout of layers 0..k-1 (``analysis.rollout_of_means`` of ``digests``, the same operations in the
        same order), continuing the longest product of T = 1 layers the session kept: a new layer costs one
        (n, n) product, and a new temperature of the shown layer only the products from it up."""
        cache = self.session._rollouts
        clean = k if temperature == 1.0 or shown >= k else shown   # layers 0..clean-1 are at T = 1
        j, r = clean, None
        while j > 0 and r is None:
            r = cache.get(self._product_key(j))
            j = j if r is not None else j - 1
        for layer in range(j, k):
            step = residual_attention(digests[layer].mean)  # (n, n)
            r = step if r is None else product(step, r)  # the higher layer on the left
            if layer < clean:
                cache[self._product_key(layer + 1)] = r
        if r is None:
            raise ValueError("rollout needs at least one layer")
        return r

    def _product_key(self, j: int) -> Tuple[Any, ...]:
        return self.src.id, self.ids, self.causal, "rollout", int(j)

    def shown_digest(self, trace: AttentionTrace, layer: int) -> LayerDigest:
        """The digest of the shown layer's ``trace`` (at its temperature)."""
        t = float(trace.temperature)
        if t == 1.0:
            return self.digest(layer)
        cache = self.session._digests
        key = self.key(layer, t)
        d = cache.get(key)
        if d is None:
            d = cache[key] = digest(trace.probs, self.tokens, self.causal)
        return d
