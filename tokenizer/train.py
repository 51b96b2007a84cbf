"""Train a byte-level BPE vocabulary on curated Parquet; save it as an HF ``tokenizer.json``.

GPT-4 style: the cl100k split regex (:data:`bpe.SPLIT_PATTERN`), bytes mapped by ``ByteLevel``, merges
learned over the byte strings (all 256 bytes in the alphabet: no unknown token, ``decode(encode(x)) == x``).
Ids: special tokens (``<|endoftext|>`` = 0), the 256 bytes, then merges in learned order; saved with
``ignore_merges=True`` (a pre-token in the vocabulary is one id, as in tiktoken). Merges are learned by
our counting front-end + numba merge loop (``backend="ours"``, default; the same merges as rustbpe),
``rustbpe`` or HF ``tokenizers``' ``BpeTrainer`` (``backend="hf"``); docs/tokenizer.md, "Training".

Documents stream from Parquet batch by batch (``reader.py``); optional weights by ``source_kind`` /
``language`` repeat or thin documents deterministically; a held-out fraction (by id hash) is left out for
the vocabulary report. Writes ``tokenizer.json``, ``tokenizer_config.json`` + ``special_tokens_map.json``
(``AutoTokenizer``) and ``corpusmill_tokenizer.json`` (inputs, parameters, timings, versions).
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from corpusmill.tokenizer.bpe import (
    EOS,
    META_FILE,
    SPLIT_PATTERN,
    TOKENIZER_FILE,
    merges_from_ids,
    merges_from_ranks,
    new_tokenizer,
    new_trainer,
    save_tokenizer,
    special_token_list,
    tokenizer_from_merges,
    write_json_atomic,
)
from corpusmill.tokenizer.reader import Weights, expand_inputs, id_unit, iter_doc_batches, parquet_rows, prefetch

log = logging.getLogger(__name__)

@dataclass
class FileStats:
    path: str
    rows: int = 0  # rows read
    rows_heldout: int = 0  # left out of training (held-out split)
    rows_trained: int = 0  # rows fed at least once
    copies_trained: int = 0  # documents fed, counting repeats from weights
    bytes_trained: int = 0  # UTF-8 bytes fed, counting repeats


@dataclass
class TrainInputs:
    """Accounting of what the training iterator read and fed."""

    files: dict[str, FileStats] = field(default_factory=dict)
    truncated: bool = False

    def totals(self) -> dict[str, int]:
        keys = ("rows", "rows_heldout", "rows_trained", "copies_trained", "bytes_trained")
        return {k: sum(getattr(f, k) for f in self.files.values()) for k in keys}


def training_batches(
    paths: list[Path],
    stats: TrainInputs,
    heldout_fraction: float = 0.0,
    weights: Weights | None = None,
    max_bytes: int | None = None,
    batch_rows: int = 1024,
    progress=None,
) -> Iterator[list[str]]:
    """Yield lists of training texts: held-out documents removed, weights applied, at most max_bytes."""
    weights = weights or Weights()
    fed = 0
    for b in iter_doc_batches(paths, batch_rows=batch_rows):
        fs = stats.files.setdefault(str(b.path), FileStats(str(b.path)))
        out: list[str] = []
        for doc_id, text, kind, lang, n in zip(b.ids, b.texts, b.kinds, b.langs, b.nbytes):
            fs.rows += 1
            if heldout_fraction > 0 and id_unit(doc_id) < heldout_fraction:
                fs.rows_heldout += 1
                continue
            copies = weights.copies(doc_id, kind, lang) if weights else 1
            if copies == 0 or not text:
                continue
            if max_bytes is not None and fed + n * copies > max_bytes:
                stats.truncated = True
                break
            out.extend([text] * copies)
            fs.rows_trained += 1
            fs.copies_trained += copies
            fs.bytes_trained += n * copies
            fed += n * copies
        if progress is not None:
            progress.update(len(b.ids))
        if out:
            yield out
        if stats.truncated:
            return


#: BPE merge learners (measured side by side, benchmarks/RESULTS.md "BPE training"). "ours": counting
#: front-end in C-speed Python (bpe_count) + numba merge loop (bpe_merge), the same merges as rustbpe with
#: 64-bit counts; rustbpe: Rust, its regex runs over every document; hf: HF's BpeTrainer (``min_frequency``).
BACKENDS = ("ours", "rustbpe", "hf")


def _train_ours(batches: Iterator[list[str]], vocab_size: int, specials: list[str], min_frequency: int):
    from corpusmill.tokenizer.bpe_count import PretokenCounter

    learn_merges = merge_kernel()
    if learn_merges is None:
        raise ValueError("backend 'ours' needs numba (set CORPUSMILL_JIT=1 or use --backend rustbpe)")
    counter = PretokenCounter()
    for batch in batches:
        counter.update(batch)
    flat, offsets, counts = counter.arrays()
    merges, _ = learn_merges(flat, offsets, counts, vocab_size - len(specials) - 256, max(min_frequency, 1))
    return tokenizer_from_merges(merges_from_ids(merges.tolist()), specials)


def _train_rustbpe(texts: Iterator[str], vocab_size: int, specials: list[str], min_frequency: int):
    import rustbpe

    if min_frequency > 1:
        raise ValueError("min_frequency needs backend='hf' (rustbpe has no such option)")
    # rustbpe counts pieces in 32-bit integers: a piece seen more than 2**31 times (" the" in a corpus of
    # ~50 GB) would overflow; larger corpora should be sampled with max_bytes / weights
    r = rustbpe.Tokenizer()
    r.train_from_iterator(texts, vocab_size=vocab_size - len(specials), pattern=SPLIT_PATTERN)
    ranks = {bytes(b): rank for b, rank in r.get_mergeable_ranks()}
    return tokenizer_from_merges(merges_from_ranks(ranks), specials)


def merge_kernel():
    """numba's compiled merge loop (compiled, or loaded from numba's cache, by the first call), or None
    when ``CORPUSMILL_JIT=0`` or numba fails (a warning says why)."""
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = False
        if os.environ.get("CORPUSMILL_JIT", "1").strip().lower() not in ("0", "false", "no", "off"):
            try:
                import numpy as np

                from corpusmill.tokenizer import bpe_merge

                bpe_merge.learn_merges(np.frombuffer(b"abab", np.uint8), np.array([0, 4]), np.array([1]), 1, 1)
                _KERNEL = bpe_merge.learn_merges
            except Exception as e:  # ImportError, numba's compile errors
                log.warning("corpusmill: numba BPE merge loop unavailable (%s: %s); using rustbpe or HF", type(e).__name__, e)
    return _KERNEL or None


_KERNEL = None


def default_backend() -> str:
    """"ours" when numba works, else rustbpe, else hf."""
    if merge_kernel() is not None:
        return "ours"
    try:
        import rustbpe  # noqa: F401
    except ImportError:
        return "hf"
    return "rustbpe"


def versions() -> dict[str, str]:
    import pyarrow
    import tokenizers

    v = {"python": platform.python_version(), "tokenizers": tokenizers.__version__, "pyarrow": pyarrow.__version__}
    try:
        from importlib.metadata import version

        v["rustbpe"] = version("rustbpe")
    except Exception:
        pass
    try:
        from importlib.metadata import version

        v["corpusmill"] = version("corpusmill")
    except Exception:  # not installed as a distribution (running from the source tree)
        v["corpusmill"] = "source"
    return v


def train_tokenizer(
    inputs: str | list[str],
    vocab_size: int,
    out: str | Path,
    special_tokens: list[str] | None = None,
    weights: list[str] | Weights | None = None,
    heldout_fraction: float = 0.01,
    max_bytes: int | None = None,
    min_frequency: int = 0,
    progress: bool = False,
    report: bool = True,
    report_max_bytes: int | None = 50_000_000,
    backend: str | None = None,
) -> dict:
    """Train, save to ``out`` and return the metadata written to ``corpusmill_tokenizer.json``.

    ``report`` also computes the vocabulary report on the held-out split (``report.json``).
    """
    out = Path(out)
    paths = expand_inputs(inputs)
    specials = special_token_list(special_tokens)
    if vocab_size < len(specials) + 256 + 1:
        raise ValueError(f"vocab_size {vocab_size} too small: needs > 256 bytes + {len(specials)} special tokens")
    w = weights if isinstance(weights, Weights) else Weights.parse(weights)

    if backend is None:
        backend = default_backend()
        if backend == "rustbpe" and min_frequency > 1:  # rustbpe has no min_frequency
            backend = "hf"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    stats = TrainInputs()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=parquet_rows(paths), unit="doc", desc="reading", file=sys.stderr)
    t0 = time.perf_counter()
    batches = training_batches(paths, stats, heldout_fraction, w, max_bytes, progress=bar)
    if backend == "ours":
        tok = _train_ours(prefetch(batches), vocab_size, specials, min_frequency)
    elif backend == "rustbpe":
        tok = _train_rustbpe((t for batch in prefetch(batches) for t in batch), vocab_size, specials, min_frequency)
    else:
        tok = new_tokenizer()
        tok.train_from_iterator(prefetch(batches), trainer=new_trainer(vocab_size, specials, min_frequency, show_progress=progress))
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    totals = stats.totals()
    if totals["copies_trained"] == 0:
        raise ValueError(f"no training text in {len(paths)} file(s) (all held out, weighted to 0 or empty)")
    save_tokenizer(tok, out, specials)

    meta = {
        "format": "corpusmill-tokenizer",
        "format_version": 1,
        "tokenizer_file": TOKENIZER_FILE,
        "model": "byte-level BPE",
        "backend": backend,
        "vocab_size": tok.get_vocab_size(),
        "requested_vocab_size": vocab_size,
        "special_tokens": specials,
        "eos_token": EOS,
        "eos_id": tok.token_to_id(EOS),
        "split_pattern": SPLIT_PATTERN,
        "ignore_merges": True,
        "params": {
            "heldout_fraction": heldout_fraction,
            "weights": w.to_json(),
            "max_bytes": max_bytes,
            "min_frequency": min_frequency,
        },
        "inputs": {
            "files": [vars(stats.files[str(p)]) if str(p) in stats.files else vars(FileStats(str(p))) for p in paths],
            "totals": totals,
            "truncated_at_max_bytes": stats.truncated,
        },
        "training_seconds": round(seconds, 3),
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if report and heldout_fraction > 0:
        from corpusmill.tokenizer.report import vocab_report

        rep = vocab_report(out, paths, heldout_fraction=heldout_fraction, max_bytes=report_max_bytes)
        write_json_atomic(out / "report.json", rep)
        meta["report"] = {k: rep[k] for k in ("bytes_per_token", "utilisation", "heldout_documents", "heldout_bytes")}
    write_json_atomic(out / META_FILE, meta)
    log.info(
        "trained vocab %d on %d docs / %.1f MB in %.1fs -> %s",
        meta["vocab_size"], totals["copies_trained"], totals["bytes_trained"] / 1e6, seconds, out,
    )
    return meta
