"""Train and evaluate fastText text classifiers (toxicity, or any labelled text), and compare scorers.

``corpusmill train-classifier`` reads labelled text (JSONL or CSV), optionally collapses the labels
(``--positive 0,1``), trains a fastText supervised model on a deterministic stratified split, evaluates
it on the held-out part and writes ``<model>.metrics.json`` next to the model (read back by
:class:`corpusmill.curation.filters.toxicity.FastTextScorer` so scoring matches training).
``corpusmill eval-toxicity`` scores the same held-out split with each toxicity scorer and prints
precision / recall / F1 (``--sets``: the shared labelled sets, :mod:`corpusmill.tools.toxicity_default`).
:func:`train` works around fastText 0.9.x's "Encountered NaN" bug (docs/toxicity.md).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import random
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from corpusmill import atomic
from corpusmill.curation.filters.toxicity import prepare_text, sidecar_path

log = logging.getLogger("corpusmill.train")

POSITIVE = "positive"
NEGATIVE = "negative"


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------
def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_labelled(
    path: str | os.PathLike, text_field: str = "text", label_field: str = "label", fmt: str | None = None
) -> list[tuple[str, str]]:
    """(text, label) pairs from a ``.jsonl`` / ``.json`` (one object a line) or ``.csv`` file (``.gz`` ok).
    Rows without text or label are skipped; labels are turned into strings (``0`` -> ``"0"``)."""
    path = Path(path)
    if fmt is None:
        suffixes = [s for s in path.suffixes if s != ".gz"]
        ext = suffixes[-1].lstrip(".").lower() if suffixes else ""
        fmt = "csv" if ext in ("csv", "tsv") else "jsonl"
    rows: list[tuple[str, str]] = []
    with _open_text(path) as f:
        if fmt == "csv":
            reader = csv.DictReader(f, delimiter="\t" if path.name.endswith((".tsv", ".tsv.gz")) else ",")
            missing = {text_field, label_field} - set(reader.fieldnames or [])
            if missing:
                raise ValueError(f"{path}: no column(s) {sorted(missing)}; columns are {reader.fieldnames}")
            records: Iterable[dict[str, Any]] = reader
        else:
            records = (json.loads(line) for line in f if line.strip())
        for rec in records:
            text, label = rec.get(text_field), rec.get(label_field)
            if text is None or label is None or str(text).strip() == "":
                continue
            rows.append((str(text), str(label).strip()))
    if not rows:
        raise ValueError(f"{path}: no rows with both {text_field!r} and {label_field!r}")
    return rows


def binarise(rows: Sequence[tuple[str, str]], positive: Iterable[str]) -> list[tuple[str, str]]:
    pos = {p.strip() for p in positive}
    return [(t, POSITIVE if lab in pos else NEGATIVE) for t, lab in rows]


def split_rows(
    rows: Sequence[tuple[str, str]], test_fraction: float = 0.2, seed: int = 0, hash_split: bool = False
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Deterministic stratified split: per label, a seeded shuffle of the row order, the first
    ``test_fraction`` go to the held-out set. Same input + seed -> same split. ``hash_split``: instead,
    a row is held out iff ``int(sha1(text)[:8], 16) % 5 == 0`` (the shared sets' rule; equal texts stay together)."""
    if hash_split:
        from corpusmill.tools.toxicity_sets import bucket

        return [r for r in rows if bucket(r[0]) != 0], [r for r in rows if bucket(r[0]) == 0]
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, (_, lab) in enumerate(rows):
        by_label[lab].append(i)
    test_idx: set[int] = set()
    for lab in sorted(by_label):
        idx = by_label[lab]
        random.Random(f"{seed}:{lab}").shuffle(idx)
        k = round(len(idx) * test_fraction)
        if len(idx) > 1:
            k = min(max(k, 1), len(idx) - 1)
        test_idx.update(idx[:k])
    train = [r for i, r in enumerate(rows) if i not in test_idx]
    test = [r for i, r in enumerate(rows) if i in test_idx]
    return train, test


def subsample(rows: Sequence[tuple[str, str]], limit: int | None, seed: int = 0) -> list[tuple[str, str]]:
    """A deterministic ``limit``-row sample (all rows when limit is None or larger)."""
    rows = list(rows)
    if limit is None or limit >= len(rows):
        return rows
    idx = list(range(len(rows)))
    random.Random(f"{seed}:sample").shuffle(idx)
    return [rows[i] for i in sorted(idx[:limit])]


# --------------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------------
def prf(y_true: Sequence[bool], y_pred: Sequence[bool]) -> dict[str, float]:
    tp = sum(1 for t, p in zip(y_true, y_pred) if t and p)
    fp = sum(1 for t, p in zip(y_true, y_pred) if not t and p)
    fn = sum(1 for t, p in zip(y_true, y_pred) if t and not p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn, "tp": tp, "fp": fp, "fn": fn}


def classification_report(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    labels = sorted(set(y_true) | set(y_pred))
    per = {lab: prf([t == lab for t in y_true], [p == lab for p in y_pred]) for lab in labels}
    acc = sum(1 for t, p in zip(y_true, y_pred) if t == p) / len(y_true) if y_true else 0.0
    macro = sum(per[lab]["f1"] for lab in labels) / len(labels) if labels else 0.0
    return {"accuracy": acc, "macro_f1": macro, "per_label": per}


# --------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------
@dataclass
class TrainParams:
    epoch: int = 10
    lr: float = 0.5
    dim: int = 32
    wordNgrams: int = 2
    minn: int = 0
    maxn: int = 0
    bucket: int = 200_000
    minCount: int = 1
    loss: str = "softmax"
    thread: int = 2
    seed: int = 0


@dataclass
class Preprocessing:
    lowercase: bool = True
    split_punct: bool = True
    max_chars: int | None = 20_000
    mask: bool = False  # URLs, @mentions and HTML entities normalised (prepare_text)
    wiki: bool = False  # wiki markup (== headings ==, ``quotes``, NEWLINE_TOKEN remnants) removed (prepare_text)


@dataclass
class TrainResult:
    model_path: str
    metrics_path: str
    metrics: dict[str, Any] = field(default_factory=dict)


def _label_token(label: str) -> str:
    return "__label__" + "_".join(label.split())


def write_fasttext_file(rows: Iterable[tuple[str, str]], path: str | os.PathLike, pre: Preprocessing) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for text, lab in rows:
            t = prepare_text(text, **asdict(pre))
            if t:
                f.write(f"{_label_token(lab)} {t}\n")
                n += 1
    return n


def safe_params(params: TrainParams) -> TrainParams:
    """Work around fastText 0.9's NaN with few threads, unigrams and no subwords (see module doc)."""
    if params.thread < 10 and params.wordNgrams < 2 and params.maxn == 0:
        log.info("wordNgrams=1 without subwords: raising thread to 10 (fastText NaN bug with few threads)")
        params = TrainParams(**{**asdict(params), "thread": 10})
    return params


def train_fasttext(rows: Sequence[tuple[str, str]], out: str | os.PathLike, params: TrainParams, pre: Preprocessing):
    import fasttext

    params = safe_params(params)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="corpusmill-train-") as tmp:
        train_file = Path(tmp) / "train.txt"
        n = write_fasttext_file(rows, train_file, pre)
        if n == 0:
            raise ValueError("no training rows left after preprocessing")
        part = out.with_name(out.name + ".part")
        _train_in_fresh_process(str(train_file), asdict(params), str(part), quantize=out.suffix == ".ftz")
    os.replace(part, out)
    return fasttext.load_model(str(out)), params


def _train_worker(train_file: str, params: dict, part: str, quantize: bool) -> None:
    import fasttext

    model = fasttext.train_supervised(input=train_file, verbose=0, **params)
    if quantize:
        model.quantize(input=None, retrain=False)
    model.save_model(part)


def _train_in_fresh_process(train_file: str, params: dict, part: str, quantize: bool) -> None:
    """Train in a freshly spawned interpreter. In a long-lived process that had run other numeric code
    (seen in the test suite after the dedup tests), fastText 0.9 training hit "Encountered NaN" on data
    that trains cleanly in a new process; a spawned process starts from a clean state every time."""
    import multiprocessing as mp

    proc = mp.get_context("spawn").Process(target=_train_worker, args=(train_file, params, part, quantize))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"fastText training failed (exit code {proc.exitcode}); see the messages above")


def predict_labels(model, texts: Sequence[str], pre: Preprocessing) -> list[str]:
    out = []
    for text in texts:
        t = prepare_text(text, **asdict(pre))
        labels, _ = model.predict(t, k=1)
        out.append(labels[0].removeprefix("__label__") if labels else "")
    return out


def train_classifier(
    input_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    text_field: str = "text",
    label_field: str = "label",
    positive: Sequence[str] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    limit: int | None = None,
    params: TrainParams | None = None,
    pre: Preprocessing | None = None,
    hash_split: bool = False,
) -> TrainResult:
    """Train on a deterministic stratified split of ``input_path``, evaluate on the held-out part, write
    ``out`` (``.bin``; ``.ftz`` = quantised) and ``<out stem>.metrics.json``."""
    params = params or TrainParams(seed=seed)
    pre = pre or Preprocessing()
    t0 = time.time()
    rows = read_labelled(input_path, text_field, label_field)
    original_labels = Counter(lab for _, lab in rows)
    if positive:
        rows = binarise(rows, positive)
    rows = subsample(rows, limit, seed)
    train, test = split_rows(rows, test_fraction, seed, hash_split=hash_split)
    model, params = train_fasttext(train, out, params, pre)
    t_train = time.time() - t0
    y_true = [_label_token(lab).removeprefix("__label__") for _, lab in test]
    y_pred = predict_labels(model, [t for t, _ in test], pre)
    report = classification_report(y_true, y_pred)
    metrics: dict[str, Any] = {
        "input": str(input_path),
        "text_field": text_field,
        "label_field": label_field,
        "label_counts": dict(sorted(original_labels.items())),
        "positive_labels": list(positive) if positive else None,
        "positive_label": POSITIVE if positive else None,
        "rows": len(rows),
        "train_rows": len(train),
        "test_rows": len(test),
        "test_fraction": test_fraction,
        "seed": seed,
        "limit": limit,
        "split": "int(sha1(text)[:8], 16) % 5 == 0 held out" if hash_split
        else "stratified by label, seeded shuffle (corpusmill.tools.toxicity_train.split_rows)",
        "params": asdict(params),
        "preprocessing": asdict(pre),
        "seconds": round(time.time() - t0, 2),
        "train_seconds": round(t_train, 2),
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "per_label": report["per_label"],
    }
    if positive:
        metrics.update({k: report["per_label"].get(POSITIVE, prf([], []))[k] for k in ("precision", "recall", "f1")})
    mpath = sidecar_path(out)
    atomic.write_json(mpath, metrics)
    return TrainResult(model_path=str(out), metrics_path=str(mpath), metrics=metrics)


def format_metrics(m: dict[str, Any]) -> str:
    lines = [
        f"rows: {m['rows']} (train {m['train_rows']}, held-out {m['test_rows']}); "
        f"accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}"
    ]
    lines.append(f"{'label':<20} {'precision':>9} {'recall':>7} {'F1':>7} {'support':>8}")
    for lab, r in m["per_label"].items():
        lines.append(f"{lab:<20} {r['precision']:>9.4f} {r['recall']:>7.4f} {r['f1']:>7.4f} {r['support']:>8}")
    if m.get("positive_label"):
        lines.append(
            f"positive ({','.join(m['positive_labels'])}): precision {m['precision']:.4f} "
            f"recall {m['recall']:.4f} F1 {m['f1']:.4f}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# scorer evaluation
# --------------------------------------------------------------------------------------------------
def evaluate_scorer(
    score: Callable[[str], float] | Callable[[list[str]], list[float]],
    test: Sequence[tuple[str, str]],
    threshold: float = 0.5,
    batch: bool = False,
) -> dict[str, Any]:
    """Precision / recall / F1 of ``score >= threshold`` for the positive class on ``test``
    (labels already binarised)."""
    texts = [t for t, _ in test]
    t0 = time.time()
    scores = list(score(texts)) if batch else [score(t) for t in texts]
    dt = time.time() - t0
    y_true = [lab == POSITIVE for _, lab in test]
    y_pred = [s >= threshold for s in scores]
    r = prf(y_true, y_pred)
    pos = [s for s, y in zip(scores, y_true) if y]
    neg = [s for s, y in zip(scores, y_true) if not y]
    r.update(
        threshold=threshold,
        n=len(test),
        mean_score_positive=sum(pos) / len(pos) if pos else 0.0,
        mean_score_negative=sum(neg) / len(neg) if neg else 0.0,
        seconds=round(dt, 3),
    )
    # ranking quality, independent of the threshold
    r["roc_auc"] = roc_auc(scores, y_true)
    return r


def roc_auc(scores: Sequence[float], y_true: Sequence[bool]) -> float:
    """Mann-Whitney AUC with ties counted half."""
    pairs = sorted(zip(scores, y_true))
    n_pos = sum(y_true)
    n_neg = len(y_true) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + 1 + j) / 2  # ranks i+1..j
        rank_sum += avg_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
