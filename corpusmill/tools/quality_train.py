"""``corpusmill train-quality``: train the ``quality`` stage's fastText classifier on your own data.

Positives are reference text you name (Wikipedia, books, the curated output of a strict recipe),
negatives raw crawl text, each given as ``READER:GLOB`` (any corpusmill reader; ``warc`` pages go
through ``extract`` first). Documents are split into train and held-out sets by a hash of their group
(a book's editions stay together), training documents are cut into chunks of about ``--chunk-chars``
characters and the larger class is subsampled to the smaller. The held-out documents are scored whole:
ROC-AUC, precision / recall at the threshold, and the score percentiles the stage's
``top_fraction_of_training_crawl`` uses go to ``<model stem>.quality.json`` beside the model.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpusmill import atomic


class UsageError(ValueError):
    """A user mistake: one line naming the option and the fix."""


@dataclass
class Doc:
    text: str
    group: str
    label: int  # 1 = reference (positive), 0 = crawl
    source: str  # the spec it came from


def parse_spec(spec: str, option: str) -> tuple[str, dict, list[str]]:
    """``READER[key=value,...]:GLOB`` -> (reader, options, files)."""
    from corpusmill.curation.readers import REGISTRY

    head, sep, pattern = spec.partition(":")
    reader, _, opts = head.partition("[")
    if not sep or reader not in REGISTRY or (opts and not opts.endswith("]")):
        raise UsageError(f"{option} {spec!r}: expected READER:GLOB or READER[key=value,...]:GLOB with READER one "
                         f"of {', '.join(sorted(REGISTRY))}")
    options = {}
    for kv in filter(None, opts[:-1].split(",")):
        k, eq, v = kv.partition("=")
        if not eq:
            raise UsageError(f"{option} {spec!r}: reader option {kv!r} is not key=value")
        options[k.strip()] = int(v) if v.strip().isdigit() else v.strip()
    try:
        REGISTRY[reader](**options)
    except TypeError as e:
        raise UsageError(f"{option} {spec!r}: {e}") from None
    files = sorted(glob.glob(os.path.expanduser(pattern)))
    if not files:
        raise UsageError(f"{option} {spec!r}: no file matches {pattern!r}")
    return reader, options, files


def read_docs(spec: str, option: str, label: int, min_words: int) -> list[Doc]:
    """The live documents of every file of ``spec`` (readers' rejects skipped)."""
    from corpusmill.curation.document import is_alive
    from corpusmill.curation.readers import get_reader
    from corpusmill.curation.registry import build_stage
    from corpusmill.curation.stage import apply_stage

    reader_name, options, files = parse_spec(spec, option)
    reader = get_reader(reader_name, **options)
    extract = build_stage("extract", {}) if reader_name == "warc" else None
    out = []
    for path in files:
        with open(path, "rb") as fh:
            for doc in reader.documents(fh, path, os.path.basename(path)):
                if extract is not None:
                    apply_stage(extract, doc)
                if not is_alive(doc) or len(doc.text.split()) < min_words:
                    continue
                gid = doc.metadata.get("gutenberg_id")
                # a book's chapters are held out one by one (give one edition of a book: editions of the
                # same chapter on both sides would leak)
                group = (f"book:{gid}:{doc.metadata.get('part', 0)}" if gid
                         else f"{os.path.basename(path)}#{doc.metadata.get('position')}")
                out.append(Doc(doc.text, group, label, spec))
    return out


def is_heldout(group: str, fraction: float, seed: int) -> bool:
    h = hashlib.blake2b(f"{seed}\x00{group}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64 < fraction


def chunks(text: str, size: int) -> list[str]:
    """Pieces of about ``size`` characters, cut at whitespace."""
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > start else end
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
        start = end
    return out


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos n_neg), ties counted half."""
    if not len(pos) or not len(neg):
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(sorted_v):  # average ranks over ties
        j = i
        while j + 1 < len(sorted_v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def binary_metrics(pos: np.ndarray, neg: np.ndarray, threshold: float) -> dict:
    tp = int((pos >= threshold).sum())
    fn = len(pos) - tp
    fp = int((neg >= threshold).sum())
    tn = len(neg) - fp
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"threshold": threshold, "precision": round(p, 4), "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "accuracy": round((tp + tn) / max(1, tp + tn + fp + fn), 4),
            "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def train_quality(positives: list[str], negatives: list[str], out: str, *, test_fraction: float = 0.2,
                  seed: int = 0, chunk_chars: int = 2000, min_words: int = 50, max_chars: int = 10_000,
                  epoch: int = 10, lr: float = 0.3, dim: int = 16, word_ngrams: int = 2, bucket: int = 200_000,
                  quantize: bool = True, threshold: float = 0.5) -> dict:
    import fasttext

    from corpusmill.curation.filters.quality import NEGATIVE, POSITIVE, prepare, sidecar_path

    started = time.time()
    docs: list[Doc] = []
    for spec in positives:
        docs += read_docs(spec, "--positive", 1, min_words)
    for spec in negatives:
        docs += read_docs(spec, "--negative", 0, min_words)
    train = [d for d in docs if not is_heldout(d.group, test_fraction, seed)]
    test = [d for d in docs if is_heldout(d.group, test_fraction, seed)]
    for label, name in ((1, "--positive"), (0, "--negative")):
        if not any(d.label == label for d in train) or not any(d.label == label for d in test):
            raise UsageError(f"{name}: too few documents for a train and a held-out part (got "
                             f"{sum(d.label == label for d in docs)}); give more input or a larger --test-fraction")
    rng = random.Random(seed)
    examples = {1: [], 0: []}
    for d in train:
        examples[d.label] += [prepare(c, max_chars, True) for c in chunks(d.text, chunk_chars)]
    n = min(len(examples[0]), len(examples[1]))
    lines = []
    for label, tag in ((1, POSITIVE), (0, NEGATIVE)):
        ex = examples[label]
        picked = sorted(rng.sample(range(len(ex)), n))  # balance the classes
        lines += [f"{tag} {ex[i]}" for i in picked]
    rng.shuffle(lines)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cm-quality-") as tmp:
        train_file = os.path.join(tmp, "train.txt")
        with open(train_file, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        params = dict(epoch=epoch, lr=lr, dim=dim, wordNgrams=word_ngrams, bucket=bucket, minCount=2,
                      thread=1, seed=seed, loss="softmax")  # one thread: the same model from the same data
        tmp_model = os.path.join(tmp, "model" + out_path.suffix)
        _train_in_fresh_process(train_file, params, tmp_model, quantize)
        model = fasttext.load_model(tmp_model)

        def score(text: str) -> float:
            labels, probs = model.predict(prepare(text, max_chars, True), k=2)
            return float(dict(zip(labels, probs)).get(POSITIVE, 0.0))

        pos = np.array([score(d.text) for d in test if d.label == 1])
        neg = np.array([score(d.text) for d in test if d.label == 0])
        by_source = {}
        for spec in positives + negatives:
            s = np.array([score(d.text) for d in test if d.source == spec])
            by_source[spec] = {"heldout_docs": int(s.size), "mean_score": round(float(s.mean()), 4) if s.size else None}
        meta = {
            "trained_with": "corpusmill train-quality",
            "positives": positives, "negatives": negatives,
            "documents": {"train_positive": sum(d.label == 1 for d in train), "train_negative": sum(d.label == 0 for d in train),
                          "heldout_positive": int(pos.size), "heldout_negative": int(neg.size)},
            "training_examples_per_class": n, "chunk_chars": chunk_chars, "min_words": min_words,
            "split": {"test_fraction": test_fraction, "seed": seed, "by": "hash of the document group (book editions together)"},
            "fasttext": {**params, "quantized": quantize},
            "preprocessing": {"max_chars": max_chars, "lowercase": True, "tokens": r"\w+|[^\w\s]"},
            "default_threshold": threshold,
            "heldout": {
                "roc_auc": round(roc_auc(pos, neg), 4),
                "at_threshold": binary_metrics(pos, neg, threshold),
                "positive_score_percentiles": [round(float(x), 5) for x in np.percentile(pos, range(101))],
                "negative_score_percentiles": [round(float(x), 5) for x in np.percentile(neg, range(101))],
                "by_source": by_source,
            },
            "seconds": round(time.time() - started, 1),
        }
        with atomic.atomic_path(out_path) as tmp_out:
            shutil.copyfile(tmp_model, tmp_out)
    atomic.write_json(sidecar_path(out_path), meta)
    meta["model_path"] = str(out_path)
    return meta


def _train_worker(train_file: str, params: dict, out: str, quantize: bool) -> None:
    import fasttext

    model = fasttext.train_supervised(input=train_file, verbose=0, **params)
    if quantize:
        model.quantize(input=train_file, qnorm=True, retrain=False, cutoff=50_000)
    model.save_model(out)


def _train_in_fresh_process(train_file: str, params: dict, out: str, quantize: bool) -> None:
    """fastText 0.9 can fail with "Encountered NaN" in a process that ran other numeric code first (seen
    after reading the inputs here, as in train-classifier): train in a freshly spawned interpreter."""
    import multiprocessing as mp

    proc = mp.get_context("spawn").Process(target=_train_worker, args=(train_file, params, out, quantize))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"fastText training failed (exit code {proc.exitcode}); see the messages above")


def cmd_train_quality(args: argparse.Namespace) -> int:
    if not args.out.endswith((".bin", ".ftz")):
        print(f"error: --out {args.out!r}: the model file must end in .ftz (quantised) or .bin", file=sys.stderr)
        return 2
    if not 0 < args.test_fraction < 1:
        print(f"error: --test-fraction {args.test_fraction}: must be between 0 and 1", file=sys.stderr)
        return 2
    try:
        for spec in args.positive:
            parse_spec(spec, "--positive")
        for spec in args.negative:
            parse_spec(spec, "--negative")
        meta = train_quality(args.positive, args.negative, args.out, test_fraction=args.test_fraction,
                             seed=args.seed, chunk_chars=args.chunk_chars, min_words=args.min_words,
                             max_chars=args.max_chars, epoch=args.epoch, lr=args.lr, dim=args.dim,
                             word_ngrams=args.word_ngrams, bucket=args.bucket, quantize=args.out.endswith(".ftz"),
                             threshold=args.threshold)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    h = meta["heldout"]
    m = h["at_threshold"]
    print(f"documents: {meta['documents']}; {meta['training_examples_per_class']} training chunks per class")
    print(f"held-out: ROC-AUC {h['roc_auc']:.4f}; at {m['threshold']}: P {m['precision']:.4f} R {m['recall']:.4f} "
          f"F1 {m['f1']:.4f} acc {m['accuracy']:.4f}")
    for spec, s in h["by_source"].items():
        print(f"  {spec}: {s['heldout_docs']} held-out documents, mean score {s['mean_score']}")
    print(f"model: {meta['model_path']} ({os.path.getsize(meta['model_path']) / 1e6:.2f} MB), "
          f"{meta['seconds']} s; metrics in the .quality.json beside it")
    return 0


def add_subcommands(subparsers) -> None:
    p = subparsers.add_parser(
        "train-quality",
        help="train a fastText quality classifier: reference text (positives) vs crawl text (negatives)",
        description="Train the quality stage's model (GPT-3 / DCLM manner) on your own data and report its "
        "held-out separation. Example: --positive 'wikipedia:data/wikipedia/enwiki-*.xml.bz2' --positive "
        "'books:data/books/*.txt' --negative 'jsonl:data/webtext/*.gz' --out quality.ftz",
    )
    p.add_argument("--positive", action="append", required=True, metavar="READER:GLOB",
                   help="reference text (repeatable), e.g. wikipedia:..., books:..., parquet:RUN/curated/*.parquet")
    p.add_argument("--negative", action="append", required=True, metavar="READER:GLOB",
                   help="raw crawl text (repeatable), e.g. jsonl:..., wet:..., warc:...")
    p.add_argument("--out", required=True, help="model file: .ftz (quantised, small) or .bin")
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out share of document groups (0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk-chars", type=int, default=2000, help="training examples: chunks of this many characters")
    p.add_argument("--min-words", type=int, default=50, help="skip shorter documents (Gopher's minimum)")
    p.add_argument("--max-chars", type=int, default=10_000, help="score the first N characters")
    p.add_argument("--threshold", type=float, default=0.5, help="the stage's default threshold, reported on held-out")
    p.add_argument("--epoch", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.3)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--word-ngrams", type=int, default=2)
    p.add_argument("--bucket", type=int, default=200_000)
    p.set_defaults(func=cmd_train_quality)
