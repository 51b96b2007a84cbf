"""Documents <-> rows of the curated / dropped Parquet schemas (the one place that maps them)."""

from __future__ import annotations

import json
import math
from typing import Any

from datatrove.data import Document

from corpusmill.curation.document import ERROR, REASON, RESERVED_KEYS, STAGE, STATUS, SIGNALS


def _clean_signals(s: dict | None) -> list[dict[str, Any]] | None:
    """Signals as ``schemas.SIGNALS_TYPE`` entries, sorted by key (non-finite values -> null)."""
    if not s:
        return None
    out = []
    for k, v in s.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        out.append((str(k), f if math.isfinite(f) else None))
    return [{"key": k, "value": v} for k, v in sorted(out)]


def signals_dict(value: Any) -> dict[str, Any]:
    """A stored ``signals`` cell as a dict: schema 2.x entries (dicts) or a 1.x map ((key, value) pairs)."""
    if not value:
        return {}
    if isinstance(value, dict):
        return dict(value)
    return {e["key"]: e["value"] for e in value} if isinstance(value[0], dict) else dict(value)


def _extra_metadata(md: dict[str, Any]) -> str | None:
    extra = {k: v for k, v in md.items() if k not in RESERVED_KEYS and not k.startswith("_")}
    if not extra:
        return None
    # allow_nan=False: strict JSON (curation.sanitize has replaced NaN/inf by null before the row is built)
    return json.dumps(extra, ensure_ascii=False, sort_keys=True, default=str, allow_nan=False)


def _opt_float(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _common(doc: Document) -> dict[str, Any]:
    md = doc.metadata
    return {
        "id": doc.id,
        "source_kind": md.get("source_kind"),
        "url": md.get("url"),
        "title": md.get("title"),
        "source_file": md.get("source_file"),
        "position": int(md.get("position", -1)),
        "language": md.get("language"),
        "language_score": _opt_float(md.get("language_score")),
        "signals": _clean_signals(md.get(SIGNALS)),
        "toxicity": _opt_float(md.get("toxicity")),
        "dedup_cluster": md.get("dedup_cluster"),
        "dedup_cluster_size": md.get("dedup_cluster_size"),
        "metadata_json": _extra_metadata(md),
    }


def curated_row(doc: Document) -> dict[str, Any]:
    row = _common(doc)
    row["text"] = doc.text
    return row


def dropped_row(doc: Document, text_chars: int) -> dict[str, Any]:
    md = doc.metadata
    row = _common(doc)
    row.update(
        status=md[STATUS],
        stage=md.get(STAGE) or "unknown",
        reason=md.get(REASON) or "unknown",
        error=md.get(ERROR),
        text=(doc.text or "")[:text_chars] if text_chars else None,
    )
    return row


def row_to_document(row: dict[str, Any]) -> Document:
    """Inverse of :func:`curated_row` / :func:`dropped_row` (used by later phases such as dedup)."""
    md: dict[str, Any] = {}
    if row.get("metadata_json"):
        md.update(json.loads(row["metadata_json"]))
    for k in (
        "source_kind",
        "url",
        "title",
        "source_file",
        "position",
        "language",
        "language_score",
        "toxicity",
        "dedup_cluster",
        "dedup_cluster_size",
    ):
        if row.get(k) is not None:
            md[k] = row[k]
    if row.get("signals"):
        md[SIGNALS] = signals_dict(row["signals"])
    if row.get("status"):
        md[STATUS] = row["status"]
        md[STAGE] = row["stage"]
        md[REASON] = row["reason"]
        if row.get("error") is not None:
            md[ERROR] = row["error"]
    return Document(text=row.get("text") or "", id=row["id"], metadata=md)
