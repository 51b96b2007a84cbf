"""Expand a recipe's inputs into the list of shards to read (engine-agnostic; Beam uses it too)."""

from __future__ import annotations

import fnmatch
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any

import fsspec

from corpusmill.curation.readers import get_reader
from corpusmill.pipelines.recipe import Recipe, RecipeError, is_url


@dataclass(frozen=True)
class Shard:
    path: str  # full local path or URL
    source_file: str  # relative name: the id namespace of its records
    reader: str
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    size: int | None = None

    def __hash__(self) -> int:
        return hash(self.source_file)


def _has_magic(p: str) -> bool:
    return any(c in p for c in "*?[")


def _full(fs, p: str) -> str:
    proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return p if proto in ("file", "local") else f"{proto}://{p}"


def _relative(full: str, roots: list[str]) -> str:
    for root in roots:
        if root and (full == root or full.startswith(root.rstrip("/") + "/")):
            return posixpath.relpath(full, root) if not is_url(root) else full[len(root.rstrip("/")) + 1 :]
    return posixpath.basename(full)


def list_shards(recipe: Recipe) -> list[Shard]:
    """Every input file, with a stable relative ``source_file``, sorted; no file listed twice."""
    shards: dict[str, Shard] = {}
    for i, spec in enumerate(recipe.inputs):
        reader_cls = type(get_reader(spec.reader, **spec.options))
        fs, p = fsspec.core.url_to_fs(spec.path)
        if _has_magic(p):
            base = p.split("*")[0].rsplit("/", 1)[0]
            found = [f for f in fs.glob(p) if fs.isfile(f)]
        elif fs.isdir(p):
            base = p
            patterns = [spec.glob] if spec.glob else list(reader_cls.default_globs)
            found = [
                f
                for f in fs.find(p)
                if any(fnmatch.fnmatch(posixpath.basename(f), pat) for pat in patterns)
                and not posixpath.basename(f).startswith(".")
            ]
        elif fs.exists(p):
            base = posixpath.dirname(p)
            found = [p]
        else:
            raise RecipeError(f"inputs[{i}].path: {spec.path} does not exist")
        if not found:
            raise RecipeError(f"inputs[{i}]: no files match under {spec.path} (glob {spec.glob or reader_cls.default_globs})")
        roots = []
        if recipe.data_root:
            roots.append(fsspec.core.url_to_fs(recipe.data_root)[1] if is_url(recipe.data_root) else os.path.abspath(recipe.data_root))
        roots.append(base)
        for f in sorted(found):
            rel = _relative(f, roots)
            if rel in shards:
                raise RecipeError(f"inputs[{i}]: {f} is already read by another input (as {rel})")
            try:
                size = fs.size(f)
            except Exception:
                size = None
            shards[rel] = Shard(path=_full(fs, f), source_file=rel, reader=spec.reader, options=spec.options, size=size)
    return [shards[k] for k in sorted(shards)]
