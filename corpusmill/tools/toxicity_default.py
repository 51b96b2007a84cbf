"""Train the shipped default toxicity model, and evaluate scorers on every shared labelled set.

``corpusmill train-toxicity`` trains a fastText classifier and a hashed n-gram logistic model on the
``train`` rows of every set of :mod:`corpusmill.tools.toxicity_sets`, fits a logistic calibration (their
logits + the word-list score -> P(toxic)) and the decision threshold on the ``dev`` rows, and writes
``<stem>.ftz``, ``<stem>.linear.npz`` and the sidecar ``<stem>.metrics.json`` (preprocessing,
calibration, threshold, dev metrics).
``corpusmill eval-toxicity --sets DIR`` scores each set's ``test`` rows with each scorer.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from corpusmill import atomic
from corpusmill.curation.filters.toxicity import FastTextScorer, prepare_text, sidecar_path
from corpusmill.tools.toxicity_sets import SETS, Row, load_set, split_of
from corpusmill.tools.toxicity_train import Preprocessing, TrainParams, _train_in_fresh_process, prf, roc_auc
from corpusmill.tools.shared_corpus import chunk_text, documents_of

log = logging.getLogger("corpusmill.train")

#: the recipe of the shipped model (curation/data/toxicity_fasttext.ftz)
DEFAULT_PARAMS = TrainParams(epoch=10, lr=0.5, dim=16, wordNgrams=2, minn=2, maxn=5, bucket=100_000, thread=1, seed=0)
DEFAULT_PRE = Preprocessing(lowercase=True, split_punct=True, max_chars=20_000, mask=True)
#: training rows repeated: the small sets would otherwise be drowned by Davidson's 15k tweets
DEFAULT_REPEAT = {"wikitox": 5, "germeval": 2}
#: calibration inputs (FastTextScorer.feature_rows) and the window of fasttext_max_logit, in tokens
DEFAULT_FEATURES = ["fasttext_logit", "linear_logit", "wordlist"]
DEFAULT_WINDOW = 0
#: the hashed n-gram model trained beside fastText (None: none); curation/filters/toxicity_linear.fit arguments
DEFAULT_LINEAR: dict[str, Any] | None = {"dim": 1 << 20, "char": (0, 0), "l2": 1e-5, "iters": 200, "lr": 0.05}
THRESHOLDS = [round(0.05 * i, 2) for i in range(1, 20)]
#: non-toxic reference text (Gutenberg books, Wikipedia articles of the shared data) cut into chunks of this
#: many characters: without long, neutral documents the model drifts toward "toxic" on web pages
REFERENCE_CHUNK_CHARS = 1000


def _records(reader: str, path: Path, **options):
    """Documents with text of one shard, read with our own readers."""
    return (rec for rec in documents_of(reader, path, **options) if rec.text.strip())


def reference_rows(shared: Path) -> list[Row]:
    """Books and Wikipedia articles of the shared data (read by corpusmill's own readers) cut into chunks,
    labelled non-toxic, split by chunk id with the same hash rule."""
    rows = []
    for f in sorted((shared / "books").glob("*.txt")):
        for i, rec in enumerate(_records("books", f, split="chunks", chunk_chars=REFERENCE_CHUNK_CHARS)):
            rows.append(Row(rec.text, False, split_of(f"books/{f.name}#{i}"), "books"))
    for f in sorted((shared / "wikipedia").glob("*.xml.bz2")):
        for rec in _records("wikipedia", f):
            title = rec.metadata.get("title") or str(rec.position)
            for i, c in enumerate(chunk_text(rec.text, REFERENCE_CHUNK_CHARS)):
                rows.append(Row(c, False, split_of(f"wikipedia/{f.name}/{title}#{i}"), "wikipedia"))
    return rows


def binary_metrics(scores: list[float], y: list[bool], threshold: float) -> dict[str, float]:
    pred = [s >= threshold for s in scores]
    r = prf(y, pred)
    return {
        "n": len(y),
        "positives": sum(y),
        "precision": r["precision"],
        "recall": r["recall"],
        "f1": r["f1"],
        "accuracy": sum(p == t for p, t in zip(pred, y)) / len(y) if y else 0.0,
        "roc_auc": roc_auc(scores, y),
    }


def fit_logistic(
    x: list[list[float]], y: list[bool], l2: float = 1e-3, iters: int = 50, weights: list[float] | None = None
) -> tuple[list[float], float]:
    """(Weighted) logistic regression by Newton's method (a handful of features; deterministic, no extra package)."""
    import numpy as np

    X = np.c_[np.asarray(x, dtype=float), np.ones(len(x))]
    t = np.asarray(y, dtype=float)
    sw = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float) * len(x) / float(np.sum(weights))
    w = np.zeros(X.shape[1])
    reg = l2 * np.eye(X.shape[1])
    reg[-1, -1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-X @ w))
        grad = X.T @ (sw * (p - t)) + reg @ w
        H = (X * (sw * p * (1 - p))[:, None]).T @ X + reg
        step = np.linalg.solve(H, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return [float(v) for v in w[:-1]], float(w[-1])


def write_training_file(data: dict[str, list[Row]], path: Path, pre: Preprocessing, repeat: dict[str, int]) -> None:
    """fastText's input: the ``train`` rows only (dev and test rows are never trained on), each set's rows
    ``repeat[set]`` times."""
    with open(path, "w", encoding="utf-8") as f:
        for name, rows in data.items():
            for r in rows:
                if r.split != "train":
                    continue
                t = prepare_text(r.text, **asdict(pre))
                if t:
                    f.write(f"__label__{'toxic' if r.toxic else 'ok'} {t}\n" * repeat.get(name, 1))


def linear_path(model: str | os.PathLike) -> Path:
    p = Path(model)
    return p.with_name(p.stem + ".linear.npz")


def train_linear(data: dict[str, list[Row]], pre: Preprocessing, linear: dict[str, Any]):
    """The hashed n-gram logistic model on the same ``train`` rows, each set weighing the same in total."""
    from corpusmill.curation.filters.toxicity_linear import fit

    texts, labels, sets = [], [], []
    for name, rows in data.items():
        for r in rows:
            if r.split == "train":
                t = prepare_text(r.text, **asdict(pre))
                if t:
                    texts.append(t)
                    labels.append(r.toxic)
                    sets.append(name)
    size = {n: sets.count(n) for n in set(sets)}
    return fit(texts, labels, [1.0 / size[n] for n in sets], **{**linear, "char": tuple(linear["char"])})


def load_training_data(root: str | os.PathLike, reference: bool = True) -> dict[str, list[Row]]:
    data = {name: load_set(name, root) for name in SETS}
    if reference:
        data["reference"] = reference_rows(Path(root).resolve().parent)
    return data


def dev_features(model: str | os.PathLike, data: dict[str, list[Row]], features: list[str], window: int):
    """``(rows of feature values, labels, set names)`` of every dev row, from the model's scorer."""
    raw = FastTextScorer(model)
    feats, ys, names = [], [], []
    for name, rows in data.items():
        dev = [r for r in rows if r.split == "dev"]
        for r, f in zip(dev, raw.feature_rows([r.text for r in dev], features, window)):
            feats.append([f[k] for k in features] if f else [0.0] * len(features))
            ys.append(r.toxic)
            names.append(name)
    return feats, ys, names


def choose_threshold(scores: list[float], ys: list[bool], names: list[str]) -> tuple[float, dict[float, float]]:
    """The grid value that maximises the mean over the labelled sets of their F1 (each set counts once,
    whatever its size; the reference chunks have no toxic rows and are left out)."""
    by_set: dict[str, tuple[list[float], list[bool]]] = {}
    for n, s, y in zip(names, scores, ys):
        if n != "reference":
            by_set.setdefault(n, ([], []))[0].append(s)
            by_set[n][1].append(y)
    mean_f1 = {t: sum(binary_metrics(s, y, t)["f1"] for s, y in by_set.values()) / len(by_set) for t in THRESHOLDS}
    return max(THRESHOLDS, key=lambda t: (round(mean_f1[t], 4), -abs(t - 0.5))), mean_f1


def train_default(
    root: str | os.PathLike,
    out: str | os.PathLike,
    params: TrainParams = DEFAULT_PARAMS,
    repeat: dict[str, int] | None = None,
    reference: bool = True,
    pre: Preprocessing = DEFAULT_PRE,
    features: list[str] | None = None,
    window: int = DEFAULT_WINDOW,
    linear: dict[str, Any] | None = DEFAULT_LINEAR,
    data: dict[str, list[Row]] | None = None,
) -> dict[str, Any]:
    """Train, calibrate, choose the threshold; write ``out`` (.ftz) and its sidecar. Returns the sidecar.
    ``reference``: also train on non-toxic book / Wikipedia chunks from ``root``'s parent (the shared data).
    ``linear``: also train the hashed n-gram model with these :func:`toxicity_linear.fit` arguments (its
    logit is then a calibration input), written next to ``out`` as ``<stem>.linear.npz``."""
    repeat = DEFAULT_REPEAT if repeat is None else repeat
    features = list(DEFAULT_FEATURES if features is None else features)
    t0 = time.time()
    data = data or load_training_data(root, reference)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    counts = {n: {s: sum(r.split == s for r in rows) for s in ("train", "dev", "test")} for n, rows in data.items()}
    with tempfile.TemporaryDirectory(prefix="corpusmill-train-") as tmp:
        train_file = Path(tmp) / "train.txt"
        write_training_file(data, train_file, pre, repeat)
        part = out.with_name(out.name + ".part")
        _train_in_fresh_process(str(train_file), asdict(params), str(part), quantize=out.suffix == ".ftz")
    os.replace(part, out)
    side: dict[str, Any] = {}
    if linear:
        side["linear_model"] = linear_path(out).name
        side["linear_params"] = {**linear, "char": list(linear["char"]), "row_weights": "1 / training rows of its set"}
        train_linear(data, pre, linear).save(linear_path(out))
    side.update({
        "model": "fastText supervised, labels toxic / ok",
        "positive_label": "toxic",
        "languages": sorted(set(SETS.values())),  # the Toxicity stage scores only these by default
        "params": asdict(params),
        "preprocessing": asdict(pre),
        "repeat": repeat,
        "rows": counts,
        "train_seconds": round(time.time() - t0, 1),
    })
    atomic.write_json(sidecar_path(out), side)  # uncalibrated scorer first, to compute the features
    feats, ys, names = dev_features(out, data, features, window)
    coef, intercept = fit_logistic(feats, ys)
    side["calibration"] = {
        "method": "logistic regression on the dev rows of every set (Platt scaling with more features)",
        "features": features,
        "window": window,
        "coef": coef,
        "intercept": intercept,
    }
    cal = [_sigmoid(sum(c * v for c, v in zip(coef, f)) + intercept) for f in feats]
    threshold, mean_f1 = choose_threshold(cal, ys, names)
    side["threshold"] = threshold
    side["threshold_rule"] = "maximises the mean over the sets of the dev F1 (grid 0.05 .. 0.95)"
    side["dev_mean_f1_by_threshold"] = {str(t): round(v, 4) for t, v in mean_f1.items()}
    side["dev_metrics"] = {
        n: binary_metrics([s for s, m in zip(cal, names) if m == n], [y for y, m in zip(ys, names) if m == n], threshold)
        for n in SETS
    }
    ref_dev = [s for n, s in zip(names, cal) if n == "reference"]
    if ref_dev:
        side["dev_reference_flagged"] = {"n": len(ref_dev), "flagged": sum(s >= threshold for s in ref_dev)}
    side["seconds"] = round(time.time() - t0, 1)
    atomic.write_json(sidecar_path(out), side)
    return side


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


def evaluate_sets(
    root: str | os.PathLike, scorers: dict[str, Any], thresholds: dict[str, float], sets: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """{set: {scorer: metrics on the set's test rows (+ documents/s)}}."""
    out: dict[str, dict[str, Any]] = {}
    for name in sets or list(SETS):
        test = [r for r in load_set(name, root) if r.split == "test"]
        texts, y = [r.text for r in test], [r.toxic for r in test]
        out[name] = {}
        for sname, scorer in scorers.items():
            t0 = time.perf_counter()
            scores = scorer.score_many(texts) if hasattr(scorer, "score_many") else [scorer.score(t) for t in texts]
            dt = time.perf_counter() - t0
            m = binary_metrics([float(s) for s in scores], y, thresholds.get(sname, 0.5))
            m.update(threshold=thresholds.get(sname, 0.5), docs_per_s=len(texts) / dt if dt else float("inf"))
            out[name][sname] = m
    return out


def format_table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| set (test rows, toxic) | scorer | threshold | precision | recall | F1 | accuracy | ROC-AUC |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, by in results.items():
        for sname, m in by.items():
            lines.append(
                f"| {name} ({m['n']}, {m['positives']}) | {sname} | {m['threshold']:.2f} | {m['precision']:.3f} | "
                f"{m['recall']:.3f} | {m['f1']:.3f} | {m['accuracy']:.3f} | {m['roc_auc']:.3f} |"
            )
    return "\n".join(lines)
