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

from collections import defaultdict
from pathlib import Path

import numpy as np

from corpusmill.tokenizer.fast_encode import Encoder
from corpusmill.tokenizer.reader import expand_inputs, id_unit, iter_doc_batches


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
