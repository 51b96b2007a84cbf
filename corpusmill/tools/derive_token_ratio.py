"""Derive the per-language thresholds of the ``token_ratio`` filter from the shared data (no published
recipe filters on subword tokens per word, so the bounds are measured): reference text per language
(books, Wikipedia, the UDHR, web text our Gopher filters keep), each sample's tokens / words, and per
language ``low = P1 x 0.9``, ``high = P99 x 1.1``. docs/filters.md ("Token-to-word ratio") gives the
steps, the defaults and why.

    python -m corpusmill.tools.derive_token_ratio                       # throwaway BPE, default output
    python -m corpusmill.tools.derive_token_ratio --tokenizer tok.json --out my_thresholds.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from corpusmill.curation.filters.token_ratio import DATA_DIR, file_sha256
from corpusmill.tools.shared_corpus import REPO, Sample, load_books, load_udhr, load_webtext, load_wikipedia, shared_data_dir

DEFAULT_OUT = DATA_DIR / "token_ratio_thresholds.json"
DEFAULT_TOKENIZER_NAME = "token_ratio_tokenizer.json"


# --------------------------------------------------------------------------------------------------
# derivation
# --------------------------------------------------------------------------------------------------


def reference_samples(shared: Path | None = None, chunk_chars: int = 4000, udhr_words: int = 60) -> list[Sample]:
    """The samples thresholds are derived from (see the module docstring, step 1)."""
    from datatrove.data import Document

    from corpusmill.curation.filters.gopher_quality import GopherQuality
    from corpusmill.curation.filters.gopher_repetition import GopherRepetition

    samples = load_books(shared, chunk_chars) + load_wikipedia(shared, chunk_chars)
    samples += [s for s in load_udhr(shared, per_article=True, min_words=udhr_words) if s.language]
    rep, qual = GopherRepetition(), GopherQuality()
    for s in load_webtext(shared):
        doc = Document(text=s.text, id=s.id, metadata={})
        if rep.filter(doc) is True and qual.filter(doc) is True:
            samples.append(Sample(s.id, s.text, "en", "webtext"))
    return samples


def train_throwaway_tokenizer(texts: list[str], vocab_size: int, out_path: Path) -> Path:
    """A byte-level BPE trained on ``texts`` (HF ``tokenizers``), saved as ``out_path``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
    )
    tok.train_from_iterator(texts, trainer=trainer)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_path))
    return out_path


def ratios(samples: list[Sample], tokenizer_path: str | Path, min_words: int) -> dict[str, list[float]]:
    """Tokens per word of every sample with at least ``min_words`` words, by language."""
    from tokenizers import Tokenizer

    from corpusmill.curation.text.doc_stats import TextStats

    tok = Tokenizer.from_file(str(tokenizer_path))
    by_lang: dict[str, list[float]] = {}
    texts = [s.text for s in samples]
    encs = tok.encode_batch(texts, add_special_tokens=False)
    for s, enc in zip(samples, encs):
        n_words = len(TextStats(s.text, s.language).words)
        if n_words < min_words or not s.language:
            continue
        by_lang.setdefault(s.language, []).append(len(enc.ids) / n_words)
    return by_lang


def derive(
    samples: list[Sample],
    tokenizer_path: str | Path,
    low_pct: float = 1.0,
    high_pct: float = 99.0,
    margin: float = 0.1,
    min_samples: int = 10,
    min_words: int = 50,
) -> dict:
    by_lang = ratios(samples, tokenizer_path, min_words)
    langs = {}
    for lang, rs in sorted(by_lang.items()):
        if len(rs) < min_samples:
            continue
        a = np.asarray(rs)
        p_lo, p_hi, med = np.percentile(a, [low_pct, high_pct, 50])
        langs[lang] = {
            "low": round(float(p_lo) * (1 - margin), 4),
            "high": round(float(p_hi) * (1 + margin), 4),
            "p_low": round(float(p_lo), 4),
            "p_high": round(float(p_hi), 4),
            "median": round(float(med), 4),
            "samples": len(rs),
        }
    return {"languages": langs, "skipped_languages": sorted(k for k in by_lang if k not in langs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpusmill.tools.derive_token_ratio", description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared-data", type=Path, default=None, help="default: ../shared/data or $CORPUSMILL_SHARED_DATA")
    ap.add_argument("--tokenizer", type=Path, default=None, help="tokenizer.json; default: train a throwaway BPE")
    ap.add_argument("--vocab-size", type=int, default=8192, help="vocabulary of the throwaway BPE")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--low", type=float, default=1.0, help="lower percentile")
    ap.add_argument("--high", type=float, default=99.0, help="upper percentile")
    ap.add_argument("--margin", type=float, default=0.1, help="relative widening of both percentiles")
    ap.add_argument("--min-samples", type=int, default=10)
    ap.add_argument("--min-words", type=int, default=50)
    ap.add_argument("--chunk-chars", type=int, default=4000, help="book / Wikipedia sample size")
    ap.add_argument("--udhr-words", type=int, default=60, help="UDHR articles are merged up to this many words")
    args = ap.parse_args(argv)

    t0 = time.time()
    shared = args.shared_data or shared_data_dir()
    samples = reference_samples(shared, args.chunk_chars, args.udhr_words)
    print(f"{len(samples)} reference samples ({time.time() - t0:.1f}s)", file=sys.stderr)
    if args.tokenizer is None:
        tok_path = args.out.parent / DEFAULT_TOKENIZER_NAME
        train_texts = [s.text for s in samples] + [s.text for s in load_webtext(shared)]
        train_throwaway_tokenizer(train_texts, args.vocab_size, tok_path)
        tokenizer_info = {
            "path": os.path.relpath(tok_path, REPO) if tok_path.is_relative_to(REPO) else str(tok_path),
            "kind": f"throwaway byte-level BPE, vocab {args.vocab_size}, trained by this script on the "
            "reference samples plus all dolma web text",
        }
        print(f"trained {tok_path} ({time.time() - t0:.1f}s)", file=sys.stderr)
    else:
        tok_path = args.tokenizer
        tokenizer_info = {"path": str(tok_path), "kind": "given with --tokenizer"}
    tokenizer_info["sha256"] = file_sha256(tok_path)

    result = derive(samples, tok_path, args.low, args.high, args.margin, args.min_samples, args.min_words)
    out = {
        "description": "OURS: per-language bounds on subword tokens per word for "
        "corpusmill.curation.filters.token_ratio.TokenToWordRatio, derived from the shared data by "
        "corpusmill/tools/derive_token_ratio.py (no published recipe). low = P_low x (1 - margin), "
        "high = P_high x (1 + margin). Valid only for the tokenizer below.",
        "command": ("python -m corpusmill.tools.derive_token_ratio " + " ".join(argv if argv is not None else sys.argv[1:])).strip(),
        "tokenizer": tokenizer_info,
        "params": {
            "low_percentile": args.low,
            "high_percentile": args.high,
            "margin": args.margin,
            "min_samples": args.min_samples,
            "min_words": args.min_words,
            "chunk_chars": args.chunk_chars,
            "udhr_words": args.udhr_words,
            "vocab_size": args.vocab_size if args.tokenizer is None else None,
        },
        "data": "books (en, nl) and Wikipedia (en, bg) chunked; UDHR per article (all translations with a "
        "language tag); dolma web text kept by GopherRepetition + GopherQuality (en)",
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}: {len(result['languages'])} languages ({time.time() - t0:.1f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
