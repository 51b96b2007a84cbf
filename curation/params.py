"""Types and ranges of stage and reader parameters, checked when a recipe is loaded.

The type of a parameter comes from its constructor's annotation (``min_doc_words: int | None``);
:data:`RANGES` adds the bounds that matter (ratios in [0, 1], sizes >= 1) and :data:`PATHS` the
parameters that name a file which must exist (and, for models, be one). Every error names the key:
``stages[3].gopher_quality.min_doc_words: expected an integer >= 0, got 'fifty'``.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
import os
import types
import typing
from pathlib import Path
from typing import Any

#: parameter -> (low, high) for every stage or reader that has it (None: unbounded); numbers default to >= 0
RANGES: dict[str, tuple[float | None, float | None]] = {
    **{k: (0, 1) for k in (
        "threshold", "min_score", "max_symbol_word_ratio", "max_bullet_lines_ratio", "max_ellipsis_lines_ratio",
        "min_alpha_words_ratio", "min_stop_word_ratio", "dup_line_frac", "dup_para_frac", "dup_line_char_frac",
        "dup_para_char_frac", "char_duplicates_ratio", "half_ratio",
    )},
    # FineWeb-2's configs turn these checks off with values outside [0, 1] (-1, 999)
    "line_punct_thr": (None, None), "short_line_thr": (None, None),
    **{k: (1, None) for k in (
        "max_line_bytes", "max_record_bytes", "max_book_bytes", "batch_size", "num_perm", "num_bands",
        "rows_per_band", "n_grams", "max_chars", "max_word_length",
    )},
}
#: parameter -> what the file must be ("fasttext": a fastText .bin/.ftz model; "file": any readable file/dir)
PATHS = {"model_path": "fasttext", "tokenizer_path": "file", "wordlist_path": "file"}
FASTTEXT_MAGIC = 793712314  # the int32 every fastText model file starts with (little-endian)


class ParamError(ValueError):
    """A parameter of the wrong type or out of range; the message starts with its key."""


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that does not evaluate: check what we can by name
        return {}


def _describe(tp: Any, lo: float | None, hi: float | None) -> str:
    if tp is bool:
        return "true or false"
    if tp is int:
        return f"an integer >= {lo if lo is not None else 0}" + (f" and <= {hi}" if hi is not None else "")
    if tp is float:
        if lo is not None and hi is not None:
            return f"a number in [{lo}, {hi}]"
        return f"a number >= {lo if lo is not None else 0}"
    if tp is str:
        return "a string"
    return "a list" if tp is list else "a mapping" if tp is dict else getattr(tp, "__name__", str(tp))


def _kinds(tp: Any) -> list[Any]:
    """The plain kinds an annotation allows: bool, int, float, str, list, dict, None; [] = anything."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        out = []
        for a in typing.get_args(tp):
            k = _kinds(a)
            if not k:
                return []
            out += k
        return out
    if tp is type(None):
        return [None]
    if tp in (bool, int, float, str):
        return [tp]
    if tp in (os.PathLike, Path) or origin is os.PathLike:
        return [str]
    base = origin or tp
    if base in (list, tuple, set, frozenset, cabc.Iterable, cabc.Sequence, cabc.Collection):
        return [list]
    if base in (dict, cabc.Mapping):
        return [dict]
    return []  # Any, protocols, classes: left to the constructor


def _fits(value: Any, kind: Any) -> bool:
    if kind is None:
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if kind is list:
        return isinstance(value, (list, tuple))
    return isinstance(value, dict)


def check_value(key: str, value: Any, annotation: Any, name: str) -> None:
    kinds = _kinds(annotation) if annotation is not None else []
    lo, hi = RANGES.get(name, (0, None))
    if kinds and not any(_fits(value, k) for k in kinds):
        wanted = " or ".join(_describe(k, lo, hi) for k in kinds if k is not None)
        off = " (or null: no limit)" if None in kinds and wanted != "a string" else ""
        raise ParamError(f"{key}: expected {wanted}, got {value!r}{off}")
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if numeric and (int in kinds or float in kinds or (not kinds and name in RANGES)):
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            k = int if int in kinds and float not in kinds else float
            raise ParamError(f"{key}: expected {_describe(k, lo, hi)}, got {value!r}")
    if name in PATHS and isinstance(value, str):
        check_path(key, value, PATHS[name])


def check_path(key: str, value: str, kind: str) -> None:
    if "://" in value:  # object-store paths are fetched by the stage (and staged for Dataflow)
        return
    p = Path(value).expanduser()
    if not p.exists():
        raise ParamError(f"{key}: {value} does not exist; give the path of an existing file")
    if not os.access(p, os.R_OK):
        raise ParamError(f"{key}: {value} is not readable (permission denied)")
    if kind == "fasttext":
        try:
            with open(p, "rb") as fh:
                head = fh.read(4)
        except OSError as e:
            raise ParamError(f"{key}: {value} cannot be read ({e.strerror})") from None
        if len(head) < 4 or int.from_bytes(head, "little") != FASTTEXT_MAGIC:
            raise ParamError(f"{key}: {value} is not a fastText model (.bin/.ftz); give a fastText model file")


def check_params(where: str, cls: type, params: dict[str, Any]) -> None:
    """Check every parameter of ``params`` against ``cls.__init__``'s annotations and :data:`RANGES`."""
    hints = _hints(cls)
    sig = inspect.signature(cls.__init__).parameters
    for name, value in params.items():
        if name not in sig and name not in RANGES and name not in PATHS:
            continue  # **options: the constructor checks the name
        check_value(f"{where}.{name}", value, hints.get(name), name)
