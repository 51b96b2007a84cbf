"""``corpusmill tokenizer-sweep``: one tokenizer per vocabulary size, compared on held-out text."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from corpusmill.tokenizer.reader import expand_inputs
from corpusmill.tokenizer.report import vocab_report
from corpusmill.tokenizer.train import train_tokenizer


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
