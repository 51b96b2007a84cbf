"""Local files that appear whole or not at all: written under a temporary name beside the target
(``.NAME.tmp-PID``), flushed to disk, then renamed. Parquet and object-store outputs of a run go through
:mod:`corpusmill.curation.writers` (fsspec) instead."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def temporary_name(path: Path, suffix: str = "") -> Path:
    """Where ``path`` is written before it is renamed (``suffix`` keeps an extension a writer needs)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{suffix}")


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory: the rename is still atomic
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """``with atomic_path(p) as tmp: write(tmp)``: ``p`` appears only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path, suffix)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, **dump_options: Any) -> None:
    dump_options.setdefault("indent", 2)
    write_text(path, json.dumps(obj, **dump_options) + "\n")
