"""The model catalogue (``models/index.json``): what models exist, their shapes, and every file.

index.json::

    {"format": "mhsa-catalogue/1",
     "models": [
       {"id": "minilm-l6", "name": "...", "description": "...", "architecture": "bert",
        "d_model": 384, "layers": 6, "heads": 12, "d_k": 32, "max_positions": 512,
        "d_ff": 1536, "vocab_size": 30522, "layer_norm_eps": 1e-12, "embeddings": "table",
        "built": true, "tokenizer": {"path": "minilm-l6/tokenizer.json", "kind": "wordpiece"},
        "files": {"<part>": ["<path>", <bytes>, "<sha256>"], ...},
        "chunks": {"embeddings.word": {"rows": 30522, "per_file": 32, "path": "minilm-l6/word/%04d.json",
                                       "size": [...], "sha256": [...]}, ...}},
       {"id": "minilm-l6-4head", ..., "shares": "minilm-l6", "head_subset": [0, 1, 2, 3], ...},
       {"id": "distilbert", ..., "built": false},
       {"id": "smollm2-135m", ..., "architecture": "llama", "kv_heads": 3, "rope_theta": 100000.0,
        "tied_embeddings": true, "tokenizer": {"path": "smollm2-135m/tokenizer.json", "kind": "bpe"},
        "files": {"layer.0.qk": [...], ..., "head": ["smollm2-135m/head.bin", ...]}, "chunks": {...}}
     ]}

Paths are relative to the ``models/`` folder.  ``shares`` names the model whose tokenizer and embedding
files (``embeddings.*`` parts) a model reuses; row-split tables are listed compactly under ``chunks``
(file ``i`` holds rows ``i*per_file ..``).  ``embeddings: "hash"`` models (demo-tiny) have no embedding
files: their inputs are SHA-256 hash vectors + sinusoidal positions.

``architecture``: ``bert`` | ``distilbert`` | ``gpt2`` | ``llama`` (``core/config.py``).  Decoder fields:
``kv_heads`` (grouped-query attention; absent = one per query head), ``rope_theta`` (absent = learned
positions), ``tied_embeddings`` (the LM head is the word table); ``layer_norm_eps`` is the eps of the
model's norms (Llama: RMSNorm).  ``tokenizer`` is ``{"path", "kind"}`` with kind ``wordpiece`` (BERT
tokenizer.json) or ``bpe`` (byte-level BPE: GPT-2, SmolLM2); a bare path string means ``wordpiece``.
A decoder's ``head`` part (final norm) plus every word-table chunk (the tied LM head) is what
next-token prediction needs (``ModelEntry.head_files``); no view before it fetches them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from .config import BERT_LAYER_NORM_EPS, BERT_VOCAB_SIZE, ModelConfig
from .weights import HEAD_PART, LAYER_PARTS, POSITION_TABLE, WORD_TABLE, WeightFileError

FORMAT = "mhsa-catalogue/1"
TOKENIZER_KINDS = ("wordpiece", "bpe")


class CatalogueError(ValueError):
    """index.json is not a valid catalogue, or names an unknown model."""


class ModelNotBuiltError(CatalogueError, WeightFileError):
    """The catalogue lists the model but its files are not shipped (both a CatalogueError and a
    WeightFileError, so either handler shows it)."""

    def __init__(self, model: str):
        self.model, self.path, self.problem = model, model + "/", "is not built"
        ValueError.__init__(self, f"model {model!r} is not built: its weight files are not in models/ "
                                  "(scripts/build_models.sh makes them)")


@dataclass
class FileEntry:
    path: str  # relative to models/
    size: int
    sha256: str
    model: str  # the model that owns the file (named in errors)
    part: str  # "tokenizer", "embeddings.norm", "embeddings.word.3", "layer.0.qk", ...
    rows: Tuple[int, int] = (0, 0)  # row range of a chunk file

    @property
    def is_tokenizer(self) -> bool:
        return self.part == "tokenizer"


@dataclass
class ChunkGroup:
    rows: int
    per_file: int
    path: str
    sizes: List[int]
    sha256: List[str]

    def chunk_of(self, row):
        """The chunk file holding ``row`` (an int); of each row of a numpy int array (an array)."""
        return row // self.per_file if hasattr(row, "ndim") else int(row) // self.per_file

    def first_row(self, index: int) -> int:
        """The first row chunk file ``index`` holds."""
        return index * self.per_file

    def path_of(self, index: int) -> str:
        """Chunk file ``index``'s path (relative to models/)."""
        return self.path % index


@dataclass
class ModelEntry:
    id: str
    name: str
    description: str
    architecture: str
    d_model: int
    n_layers: int
    n_heads: int
    d_k: int
    max_positions: int
    d_ff: int = 0
    vocab_size: int = BERT_VOCAB_SIZE
    layer_norm_eps: float = BERT_LAYER_NORM_EPS
    embeddings: str = "table"
    built: bool = False
    source: str = ""
    tokenizer_path: str = ""
    shares: str = ""
    head_subset: Optional[List[int]] = None
    n_kv_heads: int = 0
    rope_theta: float = 0.0
    tied_embeddings: bool = False
    tokenizer_kind: str = "wordpiece"  # "wordpiece" | "bpe"
    files: Dict[str, FileEntry] = field(default_factory=dict)
    chunks: Dict[str, ChunkGroup] = field(default_factory=dict)
    catalogue: Optional["Catalogue"] = field(default=None, repr=False, compare=False)

    @property
    def config(self) -> ModelConfig:
        return ModelConfig(d_model=self.d_model, n_layers=self.n_layers, n_heads=self.n_heads, d_k=self.d_k,
                           max_positions=self.max_positions, arch=self.architecture,
                           layer_norm_eps=self.layer_norm_eps, d_ff=self.d_ff, vocab_size=self.vocab_size,
                           embeddings=self.embeddings, n_kv_heads=self.n_kv_heads, rope_theta=self.rope_theta,
                           tied_embeddings=self.tied_embeddings)

    @property
    def layers_x_heads(self) -> str:
        return f"{self.n_layers} x {self.n_heads}"

    # -- files ----------------------------------------------------------------------------------------
    def _embedding_owner(self) -> "ModelEntry":
        if self.shares and self.catalogue is not None:
            return self.catalogue.get(self.shares)
        return self

    def tokenizer_file(self) -> FileEntry:
        if self.catalogue is not None:
            f = self.catalogue.file(self.tokenizer_path)
            if f is not None:
                return f
        raise CatalogueError(f"model {self.id!r} has no tokenizer file in the catalogue")

    def chunk_file(self, table: str, index: int) -> FileEntry:
        g = self.chunks[table]
        lo = g.first_row(index)
        return FileEntry(g.path_of(index), g.sizes[index], g.sha256[index], self.id,
                         f"{table}.{index}", (lo, min(lo + g.per_file, g.rows)))

    def all_files(self) -> List[FileEntry]:
        """Every file this entry itself lists (not the shared ones)."""
        out = list(self.files.values())
        for table, g in self.chunks.items():
            out.extend(self.chunk_file(table, i) for i in range(len(g.sizes)))
        return out

    def embedding_files(self, ids: Sequence[int]) -> List[FileEntry]:
        """Files needed to embed these token ids (none for hash embeddings)."""
        if self.embeddings != "table":
            return []
        owner = self._embedding_owner()
        out = [owner.files["embeddings.norm"]] if "embeddings.norm" in owner.files else []
        word = owner.chunks[WORD_TABLE]
        for c in sorted({word.chunk_of(i) for i in ids}):
            out.append(owner.chunk_file(WORD_TABLE, c))
        pos = owner.chunks.get(POSITION_TABLE)  # None: RoPE models have no position table
        for c in sorted({pos.chunk_of(i) for i in range(len(ids))}) if pos else ():
            out.append(owner.chunk_file(POSITION_TABLE, c))
        return out

    def head_files(self) -> List[FileEntry]:
        """What next-token prediction adds: the final norm, and the LM head = every word-table chunk (tied)."""
        if HEAD_PART not in self.files:
            raise CatalogueError(f"model {self.id!r} has no language-model head (not a decoder)")
        owner = self._embedding_owner()
        word = owner.chunks[WORD_TABLE]
        return [self.files[HEAD_PART]] + [owner.chunk_file(WORD_TABLE, c) for c in range(len(word.sizes))]

    def layer_file(self, layer: int, part: str) -> FileEntry:
        key = f"layer.{layer}.{part}"
        if key not in self.files:
            raise CatalogueError(f"model {self.id!r} has no {key} weights")
        return self.files[key]

    def has_part(self, layer: int, part: str) -> bool:
        return f"layer.{layer}.{part}" in self.files

    def files_for(self, ids: Sequence[int], layer: Optional[int] = None,
                  parts: Iterable[str] = ("qk",), next_token: bool = False) -> List[FileEntry]:
        """Every file needed to show ``parts`` of ``layer`` for these ids (layers below: full blocks).

        ``next_token=True``: everything the next-token logits need (every layer, the final norm and the
        whole tied LM head), whatever ``layer`` is."""
        out = self.embedding_files(ids)
        if next_token:
            for below in range(self.n_layers):
                out.extend(self.layer_file(below, p) for p in LAYER_PARTS)
            return out + self.head_files()
        if layer is not None:
            if not 0 <= layer < self.n_layers:
                raise CatalogueError(f"layer {layer} out of range: model {self.id!r} has layers 0..{self.n_layers - 1}")
            for below in range(layer):
                out.extend(self.layer_file(below, p) for p in LAYER_PARTS)
            for p in parts:
                if p not in LAYER_PARTS:
                    raise CatalogueError(f"unknown part {p!r} (expected one of {LAYER_PARTS})")
                if p == "ffn" and not self.has_part(layer, p):
                    continue  # attention-only subset models
                out.append(self.layer_file(layer, p))
        return out


class Catalogue:
    def __init__(self, models: List[ModelEntry]):
        self.models = models
        self._by_id = {m.id: m for m in models}
        self._files: Dict[str, FileEntry] = {}
        for m in models:
            m.catalogue = self
            for f in m.all_files():
                self._files.setdefault(f.path, f)

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def __contains__(self, model_id: str) -> bool:
        return model_id in self._by_id

    def ids(self) -> List[str]:
        return [m.id for m in self.models]

    def get(self, model_id: str) -> ModelEntry:
        try:
            return self._by_id[model_id]
        except KeyError:
            raise CatalogueError(f"unknown model {model_id!r} (known: {', '.join(self.ids())})") from None

    def file(self, path: str) -> Optional[FileEntry]:
        return self._files.get(path)

    def files(self) -> List[FileEntry]:
        return list(self._files.values())


def _entry(d: dict) -> ModelEntry:
    files = {part: FileEntry(rec[0], int(rec[1]), str(rec[2]), d["id"], part)
             for part, rec in (d.get("files") or {}).items()}
    chunks = {name: ChunkGroup(int(g["rows"]), int(g["per_file"]), g["path"], [int(s) for s in g["size"]],
                               list(g["sha256"])) for name, g in (d.get("chunks") or {}).items()}
    for name, g in chunks.items():
        n_files = (g.rows + g.per_file - 1) // g.per_file
        if len(g.sizes) != n_files or len(g.sha256) != n_files:
            raise CatalogueError(f"model {d['id']!r}: chunk list {name} should have {n_files} files")
    tokenizer = d.get("tokenizer", "")
    if isinstance(tokenizer, str):
        tokenizer = {"path": tokenizer, "kind": "wordpiece"}
    if tokenizer.get("kind", "wordpiece") not in TOKENIZER_KINDS:
        raise CatalogueError(f"model {d['id']!r}: unknown tokenizer kind {tokenizer.get('kind')!r}")
    return ModelEntry(
        id=d["id"], name=d.get("name", d["id"]), description=d.get("description", ""),
        architecture=d["architecture"], d_model=int(d["d_model"]), n_layers=int(d["layers"]),
        n_heads=int(d["heads"]), d_k=int(d["d_k"]), max_positions=int(d["max_positions"]),
        d_ff=int(d.get("d_ff", 0)), vocab_size=int(d.get("vocab_size", BERT_VOCAB_SIZE)),
        layer_norm_eps=float(d.get("layer_norm_eps", BERT_LAYER_NORM_EPS)), embeddings=d.get("embeddings", "table"),
        built=bool(d.get("built", False)), source=d.get("source", ""), tokenizer_path=tokenizer.get("path", ""),
        tokenizer_kind=tokenizer.get("kind", "wordpiece"), shares=d.get("shares", ""),
        head_subset=d.get("head_subset"), n_kv_heads=int(d.get("kv_heads", 0)),
        rope_theta=float(d.get("rope_theta", 0.0)), tied_embeddings=bool(d.get("tied_embeddings", False)),
        files=files, chunks=chunks)


def load_catalogue(data: Union[str, bytes, dict]) -> Catalogue:
    """Parse index.json (text, bytes or an already-parsed dict)."""
    try:
        doc = json.loads(data) if isinstance(data, (str, bytes)) else data
        if doc.get("format") != FORMAT:
            raise CatalogueError(f"not a model catalogue (format {doc.get('format')!r})")
        cat = Catalogue([_entry(m) for m in doc["models"]])
    except CatalogueError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        raise CatalogueError(f"models/index.json is not a valid catalogue: {e}") from None
    for m in cat:
        if m.shares and m.shares not in cat:
            raise CatalogueError(f"model {m.id!r} shares files of unknown model {m.shares!r}")
    return cat


def catalogue_json(models: List[dict]) -> str:
    """Serialise a catalogue deterministically (used by the scripts)."""
    lines = [json.dumps(m, separators=(",", ":")) for m in models]  # one compact line per model
    return '{"format":"%s","models":[\n%s\n]}\n' % (FORMAT, ",\n".join(lines))
