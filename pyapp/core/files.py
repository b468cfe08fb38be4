"""CPython helper: the ``models/`` folder on disk feeding a WeightStore (CLI, scripts, tests).

The browser never imports this module: it fetches the same paths over HTTP and calls ``store.add``.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional, Sequence

from .catalogue import Catalogue, CatalogueError, FileEntry, load_catalogue
from .sources import ModelSource, load_tokenizer, make_source
from .store import WeightStore


def default_models_dir() -> str:
    """``models/`` next to the ``pyapp`` package (the repository root)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "models")


def load_local_catalogue(models_dir: Optional[str] = None) -> Catalogue:
    path = os.path.join(models_dir or default_models_dir(), "index.json")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise CatalogueError(f"cannot read the model catalogue {path}: {e.strerror}") from None
    return load_catalogue(data)


def read_file(store: WeightStore, f: FileEntry, models_dir: str) -> bytes:
    try:
        with open(os.path.join(models_dir, f.path), "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise store.error(f.path, "is missing") from None
    except OSError as e:
        raise store.error(f.path, f"cannot be read ({e.strerror})") from None


def fetch_into(store: WeightStore, files: Iterable[FileEntry], models_dir: Optional[str] = None) -> int:
    """Read each file from disk and add it to the store (verified).  Returns the bytes read."""
    models_dir = models_dir or default_models_dir()
    total = 0
    for f in files:
        data = read_file(store, f, models_dir)
        store.add(f.path, data)
        total += len(data)
    return total


class LocalModel:
    """A catalogue model whose files are read from disk on demand (what the CLI uses)."""

    def __init__(self, model_id: str, models_dir: Optional[str] = None,
                 catalogue: Optional[Catalogue] = None, store: Optional[WeightStore] = None):
        self.models_dir = models_dir or default_models_dir()
        self.catalogue = catalogue or load_local_catalogue(self.models_dir)
        self.store = store or WeightStore(self.catalogue)
        self.entry = self.catalogue.get(model_id)
        self.store.entry(model_id)  # CatalogueError if the model is not built
        self.bytes_read = 0
        self.bytes_read += fetch_into(self.store, self.store.missing(model_id, tokenizer=True), self.models_dir)
        self.tokenizer = load_tokenizer(self.entry.tokenizer_kind, self.store.data(self.entry.tokenizer_file().path))
        self.source: ModelSource = make_source(self.entry, self.tokenizer, self.store)

    @property
    def encoder(self):
        return self.source.encoder

    def need(self, ids: Sequence[int], layer: Optional[int] = None, parts: Sequence[str] = ("qk",),
             next_token: bool = False) -> int:
        """Load whatever is missing for ``parts`` of ``layer`` (``next_token``: for the next-token logits);
        returns the bytes read."""
        n = fetch_into(self.store, self.store.missing(self.entry.id, ids, layer, parts, next_token=next_token),
                       self.models_dir)
        self.bytes_read += n
        return n


