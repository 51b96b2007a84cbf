"""Make one record writable before it is stored: repair what Parquet/JSON cannot hold, and say so.

Repairs (each recorded once per record in metadata ``cm_repairs`` and counted per shard in the manifest's
``repaired`` map): ``lone_surrogate`` (a lone UTF-16 surrogate in the text, a key or a string value,
e.g. from JSON ``"\\ud800"`` or an undecodable file name: replaced by U+FFFD), ``url_not_string`` /
``title_not_string`` (a number becomes its decimal string; a list, object or boolean moves to
``url_raw`` / ``title_raw`` in metadata_json and the column is null), ``nonfinite_number`` (NaN or
infinity in metadata becomes null: metadata_json is strict JSON), ``bad_field_type`` (a bookkeeping
field of the wrong type, e.g. a non-numeric ``dedup_cluster_size``, is set to null).
"""

from __future__ import annotations

import math
import re
from typing import Any

from datatrove.data import Document

REPAIRS = "cm_repairs"

_SURROGATE = re.compile("[\ud800-\udfff]")
_STR_FIELDS = ("source_kind", "language", "dedup_cluster", "cm_status", "cm_stage", "cm_reason", "cm_error")
_INT_FIELDS = ("dedup_cluster_size",)


def fix_str(s: str, repairs: set[str]) -> str:
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        repairs.add("lone_surrogate")
        return _SURROGATE.sub("\ufffd", s)


def _fix_value(v: Any, repairs: set[str]) -> Any:
    if isinstance(v, str):
        return fix_str(v, repairs)
    if isinstance(v, float) and not math.isfinite(v):
        repairs.add("nonfinite_number")
        return None
    if isinstance(v, dict):
        return {fix_str(str(k), repairs): _fix_value(x, repairs) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_fix_value(x, repairs) for x in v]
    return v


def _fix_link(md: dict[str, Any], key: str, repairs: set[str]) -> None:
    v = md.get(key)
    if v is None or isinstance(v, str):
        return
    repairs.add(f"{key}_not_string")
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        md[key] = str(v)
    else:
        md[f"{key}_raw"] = v
        del md[key]


def sanitize(doc: Document) -> set[str]:
    """Repair ``doc`` in place so that it can be written; returns every repair it holds (old and new).

    Idempotent: a second call finds nothing new. Raises only on pathological values (e.g. metadata
    nested beyond the recursion limit); the caller turns that into an error record.
    """
    md = doc.metadata
    prior = md.get(REPAIRS)
    repairs: set[str] = {r for r in prior if isinstance(r, str)} if isinstance(prior, list) else set()
    if not isinstance(doc.text, str):
        doc.text = "" if doc.text is None else str(doc.text)
        repairs.add("bad_field_type")
    doc.text = fix_str(doc.text, repairs)
    for key in ("url", "title"):
        _fix_link(md, key, repairs)
    for key in _STR_FIELDS:
        v = md.get(key)
        if v is not None and not isinstance(v, str):
            md[key] = str(v)
            repairs.add("bad_field_type")
    for key in _INT_FIELDS:
        v = md.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            try:
                md[key] = int(v)
            except (TypeError, ValueError, OverflowError):
                md[key] = None
            repairs.add("bad_field_type")
    for key in list(md):
        if key in (REPAIRS, "signals"):  # signals: non-finite values are stored as null by the row builder
            continue
        v = md[key]
        fixed_key = fix_str(key, repairs) if isinstance(key, str) else str(key)
        fixed = _fix_value(v, repairs)
        if fixed_key != key:
            del md[key]
        md[fixed_key] = fixed
    if repairs:
        md[REPAIRS] = sorted(repairs)
    return repairs


__all__ = ["REPAIRS", "fix_str", "sanitize"]
