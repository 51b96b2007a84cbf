"""Checks a subcommand runs before any work starts: paths exist, a tokenizer or model is what it claims.

Each check raises :class:`UsageError` with one line naming the path and the fix; ``corpusmill.cli``
prints it as ``corpusmill COMMAND: error: ...`` and exits with code 2.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

MAGIC = {b"\x1f\x8b": ("gzip", ".gz"), b"BZh": ("bzip2", ".bz2"), b"\x28\xb5\x2f\xfd": ("zstd", ".zst")}
FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")


class UsageError(Exception):
    """A user mistake found before work started: the message names the problem and the fix."""


def need_file(path: str | os.PathLike, what: str, fix: str = "") -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise UsageError(f"{what} {path} does not exist" + (f"; {fix}" if fix else ""))
    if not p.is_file():
        raise UsageError(f"{what} {path} is not a file" + (f"; {fix}" if fix else ""))
    if not os.access(p, os.R_OK):
        raise UsageError(f"{what} {path} is not readable (permission denied)")
    return p


def need_dir(path: str | os.PathLike, what: str, fix: str = "") -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise UsageError(f"{what} {path} " + ("is not a directory" if p.exists() else "does not exist")
                         + (f"; {fix}" if fix else ""))
    return p


def need_matches(patterns: list[str] | str, what: str, suffix: str = ".parquet") -> list[str]:
    """Files matched by globs or directories (searched recursively for ``*suffix``); at least one."""
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    found = []
    for pat in patterns:
        if "://" in pat:
            return patterns  # object stores are listed by the command itself
        if os.path.isdir(pat):
            found += glob.glob(os.path.join(pat, "**", f"*{suffix}"), recursive=True)
        else:
            found += [p for p in glob.glob(pat, recursive=True) if os.path.isfile(p)]
    if not found:
        raise UsageError(f"{what}: no {suffix} files match {' '.join(patterns)}; check the path or glob")
    return sorted(set(found))


def need_tokenizer(path: str | os.PathLike) -> Path:
    """A tokenizer directory (written by train-tokenizer) or a tokenizer.json file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UsageError(f"--tokenizer {path} does not exist; give the directory written by "
                         "`corpusmill train-tokenizer --out DIR` (or its tokenizer.json)")
    f = p / "tokenizer.json" if p.is_dir() else p
    if not f.is_file():
        raise UsageError(f"--tokenizer {path} has no tokenizer.json; give the directory written by "
                         "`corpusmill train-tokenizer --out DIR`")
    try:
        with open(f, "rb") as fh:
            head = fh.read(64).lstrip()
    except OSError as e:
        raise UsageError(f"--tokenizer {f} cannot be read ({e.strerror})") from None
    if not head.startswith(b"{"):
        raise UsageError(f"--tokenizer {f} is not a tokenizer.json (HF tokenizers JSON)")
    try:
        from tokenizers import Tokenizer

        Tokenizer.from_file(str(f))
    except ImportError:  # pragma: no cover - tokenizers is a dependency
        pass
    except Exception as e:  # tokenizers raises plain Exception for a bad file
        raise UsageError(f"--tokenizer {f} cannot be loaded ({' '.join(str(e).split())[:200]}); give the "
                         "directory written by `corpusmill train-tokenizer --out DIR`") from None
    return f


def need_parquet_column(files: list[str], column: str = "text", what: str = "--input") -> None:
    """Every local Parquet file has a readable footer and the text column (read in this process, so a bad
    file is named here rather than in a worker's traceback)."""
    import pyarrow.parquet as pq

    for f in files:
        if "://" in f:
            continue
        try:
            names = pq.read_schema(f).names
        except Exception as e:  # pyarrow raises ArrowInvalid / OSError for a damaged file
            raise UsageError(f"{what}: {f} is not a readable Parquet file ({' '.join(str(e).split())[:160]})") from None
        if column not in names:
            raise UsageError(f"{what}: {f} has no {column!r} column (it has: {', '.join(names[:12])})")


def need_fasttext_model(path: str | os.PathLike, what: str) -> Path:
    p = need_file(path, what, "give a fastText model file (.bin/.ftz)")
    with open(p, "rb") as fh:
        if fh.read(4) != FASTTEXT_MAGIC:
            raise UsageError(f"{what} {path} is not a fastText model (.bin/.ftz); give a fastText model file")
    return p


def compressed_but_named_plain(path: str, plain_suffixes: tuple[str, ...] = (".jsonl", ".json", ".txt")) -> str | None:
    """``"gzip"`` (or bzip2, zstd) when a file with a plain name starts with that format's magic bytes."""
    if not path.lower().endswith(plain_suffixes):
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return None  # unreadable files are counted errors of the run
    for magic, (kind, _) in MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def compressed_suffix(kind: str) -> str:
    return next(ext for k, ext in MAGIC.values() if k == kind)
