"""Vocabulary report and vocabulary-size sweep.

``vocab_report`` encodes the *held-out* documents (``id_unit(id) < heldout_fraction``, the ones
``train_tokenizer`` left out) and reports

* bytes per token (UTF-8 bytes of text / tokens; higher = better compression) overall, per language
  and per source_kind,
* vocabulary utilisation: the fraction of the vocabulary's ids that occur at least once in the held-out
  text (a large vocabulary with low utilisation wastes embedding rows).

``sweep`` trains one vocabulary per size on the same data and prints one row per size, so the choice of
``--vocab-size`` can be made with numbers (compression gained per doubling vs. embedding parameters).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from tokenizer.fast_encode import Encoder
from tokenizer.reader import expand_inputs, id_unit, iter_doc_batches


def _group() -> dict:
    return {"documents": 0, "bytes": 0, "tokens": 0}


def vocab_report(
    tokenizer: str | Path | Encoder,
    inputs,
    heldout_fraction: float = 0.01,
    max_bytes: int | None = None,
    backend: str = "auto",
) -> dict:
    """Report on the held-out split of ``inputs`` (``heldout_fraction=1`` reports on everything)."""
    enc = tokenizer if isinstance(tokenizer, Encoder) else Encoder(tokenizer, backend=backend)
    paths = expand_inputs(inputs)
    counts = np.zeros(enc.vocab_size, dtype=np.int64)
    overall = _group()
    by = {"language": defaultdict(_group), "source_kind": defaultdict(_group)}
    done = False
    for b in iter_doc_batches(paths):
        sel = [i for i, d in enumerate(b.ids) if heldout_fraction >= 1 or id_unit(d) < heldout_fraction]
        if not sel:
            continue
        if max_bytes is not None:
            room = max_bytes - overall["bytes"]
            for k, i in enumerate(sel):
                room -= b.nbytes[i]
                if room < 0:
                    sel, done = sel[:k], True
                    break
        ids = enc.encode_batch([b.texts[i] for i in sel], num_threads=2)
        for i, toks in zip(sel, ids):
            if toks:
                counts += np.bincount(np.asarray(toks, dtype=np.int64), minlength=enc.vocab_size)
            for g in (overall, by["language"][b.langs[i] or "?"], by["source_kind"][b.kinds[i] or "?"]):
                g["documents"] += 1
                g["bytes"] += b.nbytes[i]
                g["tokens"] += len(toks)
        if done:
            break

    def finish(g: dict) -> dict:
        g["bytes_per_token"] = round(g["bytes"] / g["tokens"], 4) if g["tokens"] else None
        return g

    used = int((counts > 0).sum())
    return {
        "vocab_size": enc.vocab_size,
        "heldout_fraction": heldout_fraction,
        "heldout_documents": overall["documents"],
        "heldout_bytes": overall["bytes"],
        "heldout_tokens": overall["tokens"],
        "bytes_per_token": finish(overall)["bytes_per_token"],
        "used_ids": used,
        "utilisation": round(used / enc.vocab_size, 4),
        "by_language": {k: finish(v) for k, v in sorted(by["language"].items(), key=lambda kv: -kv[1]["bytes"])},
        "by_source_kind": {k: finish(v) for k, v in sorted(by["source_kind"].items(), key=lambda kv: -kv[1]["bytes"])},
        "encoder": enc.backend,
    }


def format_report(rep: dict, top: int = 15) -> str:
    """A plain-text table of a report (the ``top`` groups by bytes for each column)."""
    lines = [
        f"held-out: {rep['heldout_documents']} docs, {rep['heldout_bytes']:,} bytes, {rep['heldout_tokens']:,} tokens",
        f"bytes/token {rep['bytes_per_token']}   vocabulary utilisation {rep['utilisation']:.1%} "
        f"({rep['used_ids']:,} of {rep['vocab_size']:,} ids used)",
    ]
    for col in ("source_kind", "language"):
        groups = rep[f"by_{col}"]
        lines.append(f"\n{col:<16}{'docs':>8}{'bytes':>14}{'tokens':>12}{'bytes/tok':>11}")
        for k, g in list(groups.items())[:top]:
            lines.append(f"{k:<16}{g['documents']:>8}{g['bytes']:>14,}{g['tokens']:>12,}{g['bytes_per_token'] or 0:>11.3f}")
        if len(groups) > top:
            lines.append(f"... {len(groups) - top} more {col} values in report.json")
    if rep["heldout_documents"] < 20:
        lines.append(f"\nwarning: only {rep['heldout_documents']} held-out documents; raise --heldout-fraction")
    return "\n".join(lines)


def sweep(
    inputs,
    vocab_sizes: list[int],
    out: str | Path | None = None,
    heldout_fraction: float = 0.01,
    max_bytes: int | None = None,
    weights: list[str] | None = None,
    special_tokens: list[str] | None = None,
    report_max_bytes: int | None = 50_000_000,
    columns: int = 4,
) -> tuple[list[dict], str]:
    """Train one tokenizer per vocabulary size; return (rows, table text). Tokenizers kept under ``out/v{N}``."""
    from tokenizer.train import train_tokenizer

    paths = expand_inputs(inputs)
    rows = []
    with tempfile.TemporaryDirectory(prefix="corpusmill-sweep-") as tmp:
        base = Path(out) if out else Path(tmp)
        for n in sorted(set(vocab_sizes)):
            t0 = time.perf_counter()
            meta = train_tokenizer(paths, n, base / f"v{n}", special_tokens=special_tokens, weights=weights,
                                   heldout_fraction=heldout_fraction, max_bytes=max_bytes, report=False)
            rep = vocab_report(base / f"v{n}", paths, heldout_fraction=heldout_fraction, max_bytes=report_max_bytes)
            rows.append({"vocab_size": n, "train_seconds": meta["training_seconds"], "seconds": round(time.perf_counter() - t0, 2), **rep})
        if out:
            (base / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows, format_sweep(rows, columns)


def format_sweep(rows: list[dict], columns: int = 4) -> str:
    """One row per vocabulary size: bytes/token overall and for the largest source kinds / languages."""
    if not rows:
        return "(no rows)"
    kinds = list(rows[-1]["by_source_kind"])[:columns]
    langs = list(rows[-1]["by_language"])[:columns]
    head = f"{'vocab':>7}{'train s':>9}{'bytes/tok':>10}{'gain':>7}{'util':>7}" + "".join(f"{'k:' + k[:9]:>12}" for k in kinds) + "".join(f"{'l:' + k[:9]:>12}" for k in langs)
    lines = [head]
    prev = None
    for r in rows:
        gain = f"{(r['bytes_per_token'] / prev - 1):+.1%}" if prev and r["bytes_per_token"] else ""
        cells = [r["by_source_kind"].get(k, {}).get("bytes_per_token") for k in kinds] + [r["by_language"].get(k, {}).get("bytes_per_token") for k in langs]
        lines.append(
            f"{r['vocab_size']:>7}{r['train_seconds']:>9.1f}{r['bytes_per_token'] or 0:>10.3f}{gain:>7}{r['utilisation']:>7.1%}"
            + "".join(f"{(c or 0):>12.3f}" for c in cells)
        )
        prev = r["bytes_per_token"]
    lines.append(f"held-out: {rows[-1]['heldout_documents']} docs, {rows[-1]['heldout_bytes']:,} bytes; "
                 "gain = bytes/token vs the previous size; util = fraction of vocab ids used on held-out")
    return "\n".join(lines)
