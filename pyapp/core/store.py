"""WeightStore: verified, decoded weight files, with no I/O of its own.

The caller asks what is missing, fetches those files however it can (CPython: ``core/files.py`` reads
``models/``; the browser: ``fetch``), and hands the bytes back::

    for f in store.missing("minilm-l6", ids, layer=0, parts=("qk",), tokenizer=True):
        store.add(f.path, fetch(f.path))          # raises WeightFileError naming model and file
    encoder = make_source(entry, tokenizer, store).encoder

``add`` checks byte size, sha256, then (weight files) the format, tensor names, dtype, shape and data
length against the model's configuration.  Files are keyed by path, so models that share files (the
head subsets share minilm-l6's embeddings) load them once.

Block-quantised tensors (SmolLM2's q4_1 matrices, q8_0 embeddings) stay quantised in the store (about
1/6 of float32) and are dequantised when a model reads them, into a cache bounded by
``dequant_cache_bytes`` (embedding rows are dequantised one by one).

The cache resists sweeps: a forward pass to a deep layer reads every block's matrices in the same order on
every edit (SmolLM2: 425 MB of float32 against a 256 MB cache), and plain least-recently-used eviction would
then drop each matrix just before it is read again (every edit dequantised all 205 of them).  So eviction is
least recently used first, except for a matrix that was cached before and evicted (a sweep coming round
again): it takes the place of an entry only once that entry is *stale*, unused for ``stale_reads`` reads (two
sweeps' worth: twice the quantised tensors added); while nothing is stale it is dequantised for this read and
not kept.  The matrices that fit stay resident from edit to edit (SmolLM2 at 256 MB: 71 dequantised per deep
edit instead of 205); the values are the same either way (dequantisation is exact and deterministic).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .catalogue import Catalogue, FileEntry, ModelEntry, ModelNotBuiltError
from .params import WeightsMissing
from .weights import (
    HEAD_PART,
    LAYER_PARTS,
    POSITION_TABLE,
    WORD_TABLE,
    Blocks,
    Tensor,
    WeightFileError,
    decode_weight_file,
    part_layout,
    table_name,
)

DEQUANT_CACHE_BYTES = 256 * 2**20  # float32 copies of quantised tensors kept at once (SmolLM2: 540 MB in all)


class WeightStore:
    def __init__(self, catalogue: Catalogue, dequant_cache_bytes: int = DEQUANT_CACHE_BYTES):
        self.catalogue = catalogue
        self._tensors: Dict[str, Dict[str, Tensor]] = {}  # path -> name -> float32 array or Blocks
        self._raw: Dict[str, bytes] = {}  # path -> bytes (tokenizer files)
        self._dequantized: "OrderedDict[Tuple[str, str], np.ndarray]" = OrderedDict()  # least recent first
        self.dequant_cache_bytes = int(dequant_cache_bytes)
        self._cached_bytes = 0
        self._last_read: Dict[Tuple[str, str], int] = {}  # cached key -> read clock of its last use
        self._evicted: set = set()  # keys cached once and evicted since (at most every quantised tensor)
        self._reads = 0  # tensor() reads of quantised tensors
        self._quantized = 0  # quantised tensors added (stale_reads)
        self.dequantized = 0  # dequantisations done (a measure of thrash)

    # -- what to fetch --------------------------------------------------------------------------------
    def missing(self, model_id: str, ids: Sequence[int] = (), layer: Optional[int] = None,
                parts: Iterable[str] = ("qk",), tokenizer: bool = False,
                next_token: bool = False) -> List[FileEntry]:
        """Catalogue files not yet added that are needed to show ``parts`` of ``layer`` for ``ids``.

        ``layer=None``: embeddings only.  Layers below ``layer`` always need their full blocks.
        ``tokenizer=True`` also lists the model's tokenizer file (needed before there are ids).
        ``next_token=True`` (decoders): everything ``next_token_logits`` needs -- every block, the final
        norm and the whole tied LM head (SmolLM2: all 1,536 word-table chunks, 30 MB).
        """
        entry = self.entry(model_id)
        need = [entry.tokenizer_file()] if tokenizer else []
        need.extend(entry.files_for(ids, layer, parts, next_token))
        seen, out = set(), []
        for f in need:
            if f.path not in seen and not self.has(f.path):
                seen.add(f.path)
                out.append(f)
        return out

    def entry(self, model_id: str) -> ModelEntry:
        entry = self.catalogue.get(model_id)
        if not entry.built:
            raise ModelNotBuiltError(model_id)
        return entry

    def has(self, path: str) -> bool:
        return path in self._tensors or path in self._raw

    # -- adding ---------------------------------------------------------------------------------------
    def error(self, path: str, problem: str) -> WeightFileError:
        """The error for a file that could not be fetched (e.g. ``problem="is missing (HTTP 404)"``)."""
        f = self.catalogue.file(path)
        return WeightFileError(f.model if f else "?", path, problem)

    def add(self, path: str, data: bytes) -> FileEntry:
        """Verify and keep one file.  Raises WeightFileError (naming model and file) on any mismatch."""
        f = self.catalogue.file(path)
        if f is None:
            raise WeightFileError("?", path, "is not listed in the catalogue")
        data = bytes(data)
        if len(data) != f.size:
            raise WeightFileError(f.model, path, f"has {len(data)} bytes, expected {f.size} (truncated or corrupt)")
        digest = hashlib.sha256(data).hexdigest()
        if digest != f.sha256:
            raise WeightFileError(f.model, path, f"has sha256 {digest[:12]}..., expected {f.sha256[:12]}... (corrupt)")
        if f.is_tokenizer:
            self._raw[path] = data
        else:
            config = self.catalogue.get(f.model).config
            self._tensors[path] = decode_weight_file(data, f.model, path, part_layout(config, f.part, f.rows))
            self._quantized += sum(1 for t in self._tensors[path].values() if isinstance(t, Blocks))
        return f

    def data(self, path: str) -> bytes:
        """Raw bytes of an added tokenizer file."""
        return self._raw[path]

    def tensors(self, path: str) -> Dict[str, np.ndarray]:
        """Every tensor of an added file as float32 (quantised ones dequantised, not cached)."""
        return {name: t.dequantize() if isinstance(t, Blocks) else t for name, t in self._tensors[path].items()}

    def stored(self, path: str) -> Dict[str, Tensor]:
        """The tensors of an added file as stored: float32 arrays, or ``Blocks`` (still quantised)."""
        return self._tensors[path]

    def stored_or_none(self, path: str) -> Optional[Dict[str, Tensor]]:
        """``stored(path)``, or None when that file is not added (yet)."""
        return self._tensors.get(path)

    @property
    def stale_reads(self) -> int:
        """Reads after which an unused cached matrix may be evicted: two sweeps over every quantised tensor."""
        return 2 * max(self._quantized, 1)

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def tensor(self, path: str, name: str) -> np.ndarray:
        """One tensor as float32; a quantised one is dequantised once and kept in the bounded cache (if it fits:
        see the module's docstring)."""
        t = self._tensors[path][name]
        if not isinstance(t, Blocks):
            return t
        self._reads += 1
        key = (path, name)
        hit = self._dequantized.get(key)
        if hit is not None:
            self._dequantized.move_to_end(key)
            self._last_read[key] = self._reads
            return hit
        hit = t.dequantize()
        self.dequantized += 1
        size = hit.nbytes
        if size > self.dequant_cache_bytes:
            return hit
        again = key in self._evicted
        while self._cached_bytes + size > self.dequant_cache_bytes:
            oldest = next(iter(self._dequantized))
            if again and self._reads - self._last_read[oldest] <= self.stale_reads:
                return hit  # a sweep larger than the cache: what is resident stays, this read goes without
            self._cached_bytes -= self._dequantized.pop(oldest).nbytes
            del self._last_read[oldest]
            self._evicted.add(oldest)
        self._evicted.discard(key)
        self._dequantized[key] = hit
        self._last_read[key] = self._reads
        self._cached_bytes += size
        return hit

    def params(self, model_id: str) -> "StoreParams":
        return StoreParams(self, self.entry(model_id))


class StoreParams:
    """The ``params`` interface of the Encoder, answered from a WeightStore for one model."""

    def __init__(self, store: WeightStore, entry: ModelEntry):
        self.store, self.entry = store, entry
        owner = entry.catalogue.get(entry.shares) if entry.shares else entry
        self._owner = owner
        self._where: Dict[str, FileEntry] = {}  # tensor name -> file holding it
        if entry.embeddings == "table" and "embeddings.norm" in owner.files:
            norm = owner.files["embeddings.norm"]
            for name in part_layout(owner.config, "embeddings.norm"):
                self._where[name] = norm
        for part, f in entry.files.items():
            if part.startswith("layer.") or part == HEAD_PART:
                for name in part_layout(entry.config, part):
                    self._where[name] = f
        self._tables: Dict[str, Optional[str]] = {table_name(entry.config, t): t
                                                  for t in (WORD_TABLE, POSITION_TABLE)
                                                  if table_name(entry.config, t)}
        if entry.config.arch == "bert":
            self._tables["embeddings.token_type_embeddings.weight"] = None

    def has(self, name: str) -> bool:
        f = self._where.get(name)
        return f is not None and self.store.has(f.path)

    def tensor(self, name: str) -> np.ndarray:
        f = self._where.get(name)
        if f is None:
            raise WeightsMissing(f"model {self.entry.id!r} has no tensor {name}")
        if not self.store.has(f.path):
            raise WeightsMissing(f"model {self.entry.id!r}: {name} needs {f.path}, which is not loaded yet")
        return self.store.tensor(f.path, name)

    def rows(self, name: str, ids: Sequence[int]) -> np.ndarray:
        table = self._tables.get(name, "")
        if table is None:  # token types: only row 0 is shipped
            if any(int(i) != 0 for i in ids):
                raise WeightsMissing("only token type 0 is shipped")
            return np.repeat(self.tensor(name), len(ids), axis=0)
        if not table:
            return self.tensor(name)[np.asarray(ids, dtype=np.int64)]
        group = self._owner.chunks[table]
        idx = np.asarray([int(i) for i in ids], dtype=np.int64).reshape(-1)  # (n,)  the rows, in the ids' order
        bad = np.flatnonzero((idx < 0) | (idx >= group.rows))
        if bad.size:
            raise ValueError(f"row {int(idx[bad[0]])} out of range for {name} ({group.rows} rows)")
        chunks = group.chunk_of(idx)  # (n,)  the chunk file of each row
        order = np.argsort(chunks, kind="mergesort")  # (n,)  positions in ids, grouped by chunk file
        ordered = chunks[order].tolist()
        out = np.empty((idx.size, self.entry.d_model), dtype=np.float32)
        lo = 0
        while lo < len(ordered):  # one gather per chunk file (about 50 at 128 MiniLM tokens; 10 at 12)
            c = ordered[lo]
            hi = lo + 1
            while hi < len(ordered) and ordered[hi] == c:
                hi += 1
            tensors = self.store.stored_or_none(group.path_of(c))
            if tensors is None:
                raise self._missing_chunk(name, table, idx, chunks)
            chunk = tensors[name]
            if hi - lo == 1 and not isinstance(chunk, Blocks):  # one row: plain indexing, no index arrays
                r = int(order[lo])
                out[r] = chunk[int(idx[r]) - group.first_row(c)]
            else:
                at = order[lo:hi]
                local = idx[at] - group.first_row(c)
                out[at] = chunk.rows(local) if isinstance(chunk, Blocks) else chunk[local]
            lo = hi
        return out

    def _missing_chunk(self, name: str, table: str, idx: np.ndarray, chunks: np.ndarray) -> WeightsMissing:
        """The error for the first row (in the ids' order) whose chunk file is not loaded yet."""
        for r, c in enumerate(chunks.tolist()):
            f = self._owner.chunk_file(table, c)
            if not self.store.has(f.path):
                return WeightsMissing(f"model {self.entry.id!r}: {name} row {int(idx[r])} needs {f.path}, which is "
                                      "not loaded yet")
        return WeightsMissing(f"model {self.entry.id!r}: {name}: a chunk file is not loaded yet")

    def row_blocks(self, name: str) -> Iterator[Tuple[int, np.ndarray]]:
        """The whole table, chunk file by chunk file: (first row, float32 (rows, width) block)."""
        table = self._tables.get(name)
        if not table:
            yield 0, self.tensor(name)
            return
        group = self._owner.chunks[table]
        files = [self._owner.chunk_file(table, c) for c in range(len(group.sizes))]
        absent = [f.path for f in files if not self.store.has(f.path)]
        if absent:
            raise WeightsMissing(f"model {self.entry.id!r}: the whole {name} is needed; {len(absent)} of its "
                                 f"{len(files)} files are not loaded yet (e.g. {absent[0]})")
        for f in files:
            chunk = self.store.stored(f.path)[name]
            yield f.rows[0], chunk.dequantize() if isinstance(chunk, Blocks) else chunk


__all__ = ["WeightStore", "StoreParams", "WeightFileError", "LAYER_PARTS"]
