"""The index on disk: generations written whole, then switched to with one atomic rename."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.chunking import Chunk
from knowledge.errors import IndexCorrupt, IndexMissing
from knowledge.vector_index import VectorIndex

FORMAT_VERSION = 1
POINTER = "CURRENT"  # names the generation directory that serves; replaced atomically
MANIFEST, CHUNKS, VECTORS, FAISS_FILE = "manifest.json", "chunks.jsonl", "vectors.npy", "vectors.faiss"


@dataclass(frozen=True)
class ArticleMeta:
    """What an answer needs to know about an article without reading its file."""

    id: str
    language: str
    title: str
    source_url: str | None
    tags: tuple[str, ...]
    summary: str
    file: str
    sha256: str


@dataclass(frozen=True)
class Generation:
    """One complete, readable index: manifest, chunks, their vectors and the FAISS index."""

    path: Path
    manifest: dict[str, Any]
    chunks: list[Chunk]
    vectors: np.ndarray  # memory-mapped (n, dim) float32, aligned with chunks
    index: VectorIndex

    @property
    def articles(self) -> list[ArticleMeta]:
        """Metadata of every indexed article (all languages)."""
        return [ArticleMeta(**{**a, "tags": tuple(a["tags"])}) for a in self.manifest["articles"]]


def pointer_path(index_dir: Path) -> Path:
    """The file whose change means a new generation is ready (checked at query time)."""
    return index_dir / POINTER


def current_generation_dir(index_dir: Path) -> Path:
    """The directory the pointer names; IndexMissing when nothing was built here."""
    pointer = pointer_path(index_dir)
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexMissing(
            f"{index_dir}: no knowledge index here; build one with "
            f"`python -m knowledge build --index {index_dir}`"
        ) from None
    if not name or "/" in name or name.startswith("."):
        raise IndexCorrupt(f"{pointer}: does not name a generation directory ({name!r})")
    return index_dir / name


def read_generation(path: Path) -> Generation:
    """Loads and cross-checks one generation; IndexCorrupt names the file at fault."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"{path / MANIFEST}: unreadable index manifest ({exc})") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexCorrupt(
            f"{path / MANIFEST}: index format {manifest.get('format')!r}, expected "
            f"{FORMAT_VERSION}; rebuild with `python -m knowledge build`"
        )
    try:
        with (path / CHUNKS).open(encoding="utf-8") as lines:
            chunks = [Chunk(**json.loads(line)) for line in lines if line.strip()]
        vectors = np.load(path / VECTORS, mmap_mode="r")
        index = VectorIndex.load(path / FAISS_FILE, manifest["index_kind"])
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise IndexCorrupt(f"{path}: unreadable index files ({exc})") from exc
    expected = manifest.get("chunk_count")
    if not (len(chunks) == vectors.shape[0] == index.size == expected):
        raise IndexCorrupt(
            f"{path}: {len(chunks)} chunks, {vectors.shape[0]} vectors, {index.size} indexed, "
            f"manifest says {expected}; rebuild with `python -m knowledge build`"
        )
    return Generation(path, manifest, chunks, vectors, index)


def read_current(index_dir: Path) -> Generation:
    """The generation that currently serves at `index_dir`."""
    return read_generation(current_generation_dir(index_dir))


def write_generation(
    index_dir: Path, manifest: dict[str, Any], chunks: list[Chunk], vectors: np.ndarray, index: VectorIndex
) -> Path:
    """Writes a new generation beside the serving one and switches the pointer to it."""
    index_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=index_dir))
    try:
        with (staging / CHUNKS).open("w", encoding="utf-8") as out:
            for chunk in chunks:
                out.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
        np.save(staging / VECTORS, np.ascontiguousarray(vectors, dtype=np.float32))
        index.save(staging / FAISS_FILE)
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
        read_generation(staging)  # never point at something that does not load
        final = index_dir / f"gen-{manifest['fingerprint'][:16]}"
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = _pointed_name(index_dir)
    tmp_pointer = index_dir / f".{POINTER}.tmp"
    tmp_pointer.write_text(final.name + "\n", encoding="utf-8")
    os.replace(tmp_pointer, pointer_path(index_dir))
    _remove_old_generations(index_dir, keep={final.name, previous})
    return final


def _pointed_name(index_dir: Path) -> str:
    try:
        return pointer_path(index_dir).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def _remove_old_generations(index_dir: Path, keep: set[str]) -> None:
    """Keeps the new and the previous generation (a running server may still read it)."""
    for path in index_dir.glob("gen-*"):
        if path.name not in keep and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
