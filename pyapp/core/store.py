"""WeightStore: verified, decoded weight files, with no I/O of its own.

The caller asks what is missing, fetches those files however it can (CPython: ``core/files.py`` reads
``models/``; the browser: ``fetch``), and hands the bytes back::

    for f in store.missing("minilm-l6", ids, layer=0, parts=("qk",), tokenizer=True):
        store.add(f.path, fetch(f.path))          # raises WeightFileError naming model and file
    encoder = make_source(entry, tokenizer, store).encoder

``add`` checks byte size, sha256, then (weight files) the format, tensor names, dtype, shape and data
length against the model's configuration.  Files are keyed by path, so models that share files (the
head subsets share minilm-l6's embeddings) load them once.
"""

from __future__ import annotations

import hashlib
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from .catalogue import Catalogue, FileEntry, ModelEntry, ModelNotBuiltError
from .encoder import WeightsMissing
from .weights import LAYER_PARTS, WeightFileError, decode_weight_file, part_layout


class WeightStore:
    def __init__(self, catalogue: Catalogue):
        self.catalogue = catalogue
        self._tensors: Dict[str, Dict[str, np.ndarray]] = {}  # path -> name -> float32 array
        self._raw: Dict[str, bytes] = {}  # path -> bytes (tokenizer files)

    # -- what to fetch --------------------------------------------------------------------------------
    def missing(self, model_id: str, ids: Sequence[int] = (), layer: Optional[int] = None,
                parts: Iterable[str] = ("qk",), tokenizer: bool = False) -> List[FileEntry]:
        """Catalogue files not yet added that are needed to show ``parts`` of ``layer`` for ``ids``.

        ``layer=None``: embeddings only.  Layers below ``layer`` always need their full blocks.
        ``tokenizer=True`` also lists the model's tokenizer.json (needed before there are ids).
        """
        entry = self.entry(model_id)
        need = [entry.tokenizer_file()] if tokenizer else []
        need.extend(entry.files_for(ids, layer, parts))
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
        return f

    def data(self, path: str) -> bytes:
        """Raw bytes of an added tokenizer file."""
        return self._raw[path]

    def tensors(self, path: str) -> Dict[str, np.ndarray]:
        return self._tensors[path]

    def params(self, model_id: str) -> "StoreParams":
        return StoreParams(self, self.entry(model_id))


class StoreParams:
    """The ``params`` interface of the Encoder, answered from a WeightStore for one model."""

    def __init__(self, store: WeightStore, entry: ModelEntry):
        self.store, self.entry = store, entry
        owner = entry.catalogue.get(entry.shares) if entry.shares else entry
        self._owner = owner
        self._where: Dict[str, FileEntry] = {}  # tensor name -> file holding it
        if entry.embeddings == "table":
            norm = owner.files["embeddings.norm"]
            for name in part_layout(owner.config, "embeddings.norm"):
                self._where[name] = norm
        for part, f in entry.files.items():
            if part.startswith("layer."):
                for name in part_layout(entry.config, part):
                    self._where[name] = f
        self._tables = {"embeddings.word_embeddings.weight": "embeddings.word",
                        "embeddings.position_embeddings.weight": "embeddings.position",
                        "embeddings.token_type_embeddings.weight": None}

    def has(self, name: str) -> bool:
        f = self._where.get(name)
        return f is not None and self.store.has(f.path)

    def tensor(self, name: str) -> np.ndarray:
        f = self._where.get(name)
        if f is None:
            raise WeightsMissing(f"model {self.entry.id!r} has no tensor {name}")
        if not self.store.has(f.path):
            raise WeightsMissing(f"model {self.entry.id!r}: {name} needs {f.path}, which is not loaded yet")
        return self.store.tensors(f.path)[name]

    def rows(self, name: str, ids: Sequence[int]) -> np.ndarray:
        table = self._tables.get(name, "")
        if table is None:  # token types: only row 0 is shipped
            if any(int(i) != 0 for i in ids):
                raise WeightsMissing("only token type 0 is shipped")
            return np.repeat(self.tensor(name), len(ids), axis=0)
        if not table:
            return self.tensor(name)[np.asarray(ids, dtype=np.int64)]
        group = self._owner.chunks[table]
        d = self.entry.d_model
        out = np.empty((len(ids), d), dtype=np.float32)
        for r, i in enumerate(ids):
            i = int(i)
            if not 0 <= i < group.rows:
                raise ValueError(f"row {i} out of range for {name} ({group.rows} rows)")
            f = self._owner.chunk_file(table, group.chunk_of(i))
            if not self.store.has(f.path):
                raise WeightsMissing(f"model {self.entry.id!r}: {name} row {i} needs {f.path}, which is not loaded yet")
            out[r] = self.store.tensors(f.path)[name][i - f.rows[0]]
        return out


__all__ = ["WeightStore", "StoreParams", "WeightFileError", "LAYER_PARTS"]
