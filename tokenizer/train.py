"""Train a byte-level BPE vocabulary on curated Parquet with HF ``tokenizers``.

The model is GPT-4 style:

1. pre-tokenisation splits text with the cl100k regex (:data:`SPLIT_PATTERN`: contractions, letter runs
   with one leading non-letter, 1-3 digit groups, punctuation runs, whitespace),
2. each piece is mapped to bytes (``ByteLevel``, the GPT-2 byte -> printable-char table),
3. BPE merges are learned over those byte strings. All 256 bytes are in the initial alphabet, so every
   string encodes without an unknown token and ``decode(encode(x)) == x``.

Special tokens come first (ids 0..k-1, ``<|endoftext|>`` is id 0), then the 256 bytes, then the merges
in the order they were learned. The BPE model is saved with ``ignore_merges=True``: a pre-token that is
itself in the vocabulary encodes to that single id (as tiktoken and Llama 3 do), which also makes our
tiktoken fast path (``fast_encode.py``) agree with HF by construction on whole-word hits.

Documents stream from Parquet batch by batch (``reader.py``); optional sampling weights by
``source_kind`` / ``language`` repeat or thin documents deterministically; a held-out fraction (by id
hash) is left out of training for the vocabulary report.

Output directory:

* ``tokenizer.json`` (HF tokenizers; also loads in ``transformers.PreTrainedTokenizerFast``),
* ``tokenizer_config.json`` + ``special_tokens_map.json`` (``AutoTokenizer.from_pretrained(DIR)``),
* ``corpusmill_tokenizer.json``: inputs (files, rows, bytes), parameters, timings, versions.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tokenizer.reader import Weights, expand_inputs, id_unit, iter_doc_batches, parquet_rows, prefetch

log = logging.getLogger(__name__)

# cl100k_base's split regex (the form with possessive quantifiers that tiktoken ships).
SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)
EOS = "<|endoftext|>"
META_FILE = "corpusmill_tokenizer.json"
TOKENIZER_FILE = "tokenizer.json"


def new_tokenizer():
    """An untrained byte-level BPE ``tokenizers.Tokenizer`` with our pre-tokenisation and decoder."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def new_trainer(vocab_size: int, special_tokens: list[str], min_frequency: int = 0, show_progress: bool = False):
    from tokenizers import pre_tokenizers, trainers

    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: no unknown tokens
        show_progress=show_progress,
    )


def special_token_list(extra: list[str] | None) -> list[str]:
    """``<|endoftext|>`` first (id 0), then the extra ones in order, without duplicates."""
    out = [EOS]
    for t in extra or []:
        if t and t not in out:
            out.append(t)
    return out


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


def versions() -> dict[str, str]:
    import pyarrow
    import tokenizers

    v = {"python": platform.python_version(), "tokenizers": tokenizers.__version__, "pyarrow": pyarrow.__version__}
    try:
        from importlib.metadata import version

        v["corpusmill"] = version("corpusmill")
    except Exception:  # not installed as a distribution (running from the source tree)
        v["corpusmill"] = "source"
    return v


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def save_tokenizer(tok, out: Path, specials: list[str], model_max_length: int | None = None) -> None:
    """tokenizer.json plus the two small files transformers' AutoTokenizer looks for."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{TOKENIZER_FILE}.tmp-{os.getpid()}"
    tok.save(str(tmp))
    os.replace(tmp, out / TOKENIZER_FILE)
    write_json_atomic(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": EOS,
            "eos_token": EOS,
            "unk_token": None,
            "add_prefix_space": False,
            "clean_up_tokenization_spaces": False,
            "model_max_length": model_max_length or 1_000_000_000,
            "additional_special_tokens": specials[1:],
        },
    )
    write_json_atomic(out / "special_tokens_map.json", {"bos_token": EOS, "eos_token": EOS, "additional_special_tokens": specials[1:]})


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

    tok = new_tokenizer()
    trainer = new_trainer(vocab_size, specials, min_frequency, show_progress=progress)
    stats = TrainInputs()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=parquet_rows(paths), unit="doc", desc="reading", file=sys.stderr)
    t0 = time.perf_counter()
    batches = training_batches(paths, stats, heldout_fraction, w, max_bytes, progress=bar)
    tok.train_from_iterator(prefetch(batches), trainer=trainer)
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
        from tokenizer.report import vocab_report

        rep = vocab_report(out, paths, heldout_fraction=heldout_fraction, max_bytes=report_max_bytes)
        write_json_atomic(out / "report.json", rep)
        meta["report"] = {k: rep[k] for k in ("bytes_per_token", "utilisation", "heldout_documents", "heldout_bytes")}
    write_json_atomic(out / META_FILE, meta)
    log.info(
        "trained vocab %d on %d docs / %.1f MB in %.1fs -> %s",
        meta["vocab_size"], totals["copies_trained"], totals["bytes_trained"] / 1e6, seconds, out,
    )
    return meta


def load_meta(tokenizer_dir: str | Path) -> dict | None:
    p = Path(tokenizer_dir) / META_FILE
    return json.loads(p.read_text()) if p.exists() else None
