"""Synthetic dedup corpus with ground truth: real sentences, planted exact and near copies.

    .venv/bin/python benchmarks/dedup_corpus.py OUT --docs 100000 [--seed 0 --shard-docs 10000]

Writes ``OUT/docs/part-{k:05d}.jsonl`` (``{"id", "text"}`` per line, ``--shard-docs`` per shard;
``--append`` keeps the shards already there and writes only the missing ones), ``OUT/truth.parquet``
(one row per document: ``index``, ``id``, ``group`` = index of the original it copies (itself for an
original), ``kind`` = original / exact / near, ``jaccard`` = true word 5-gram Jaccard with the
original after corpusmill's normalisation, for near copies; per shard in ``OUT/truth/``) and
``OUT/corpus.json`` (parameters and counts).

Sentence pool: every distinct normalised sentence of 6 to 40 words of the English books (newest
editions only) and the dolma web pages in ../shared/data. Document i is generated from its own RNG
``(seed, i)``, so any document can be regenerated alone (a copy regenerates its original):

- original (1 - p_exact - p_near): 4 to 10 sentences drawn uniformly from the pool;
- exact copy (p_exact = 5%) of a random earlier original: the same text, half of them with other
  line breaks and upper case (identical after normalisation);
- near copy (p_near = 10%) of a random earlier original: ``e`` word edits (substitution with a
  pool word, deletion or insertion, equally likely) at random positions, ``e = ceil(words * r)``
  with ``r`` uniform in [0, 0.018) (measured: ~4 % of near copies end below Jaccard 0.8, < 0.5 % below 0.7).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CORPUSMILL_SHARED_DATA", REPO.parent / "shared" / "data"))
BOOKS = ("pg1661_adventures-of-sherlock-holmes.txt", "pg3261_news-from-nowhere.txt", "pg972_devils-dictionary.txt")
P_EXACT, P_NEAR, MAX_EDIT_RATE = 0.05, 0.10, 0.018
WARMUP = 100  # the first documents are originals (copies need earlier originals)
_SPLIT = re.compile(r"(?<=[.!?])\s+")


def sentence_pool() -> list[str]:
    from corpusmill.curation.dedup.normalize import normalize_text

    texts = [(DATA / "books" / b).read_text(encoding="utf-8-sig") for b in BOOKS]
    for p in sorted((DATA / "webtext").glob("*.json*.gz")):
        with gzip.open(p, "rt", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]
    seen, pool = set(), []
    for t in texts:
        for s in _SPLIT.split(re.sub(r"\s+", " ", t)):
            s = s.strip()
            n = len(s.split())
            if 6 <= n <= 40:
                key = normalize_text(s)
                if key not in seen:
                    seen.add(key)
                    pool.append(s)
    return pool


class Corpus:
    """Document ``i`` of the corpus for a seed (deterministic, independent of other documents)."""

    def __init__(self, seed: int = 0, pool: list[str] | None = None) -> None:
        self.seed = seed
        self.pool = pool if pool is not None else sentence_pool()
        self.words = sorted({w for s in self.pool[:3000] for w in s.split()})

    def _rng(self, i: int):
        return np.random.default_rng([self.seed, i])

    def kind(self, i: int) -> tuple[str, int]:
        """(kind, original index)."""
        if i < WARMUP:
            return "original", i
        rng = self._rng(i)
        u = rng.random()
        if u >= P_EXACT + P_NEAR:
            return "original", i
        j = int(rng.integers(0, i))
        while self.kind(j)[0] != "original":  # copies are of originals
            j = int(rng.integers(0, j)) if j else 0
        return ("exact" if u < P_EXACT else "near"), j

    def _original(self, i: int) -> str:
        rng = self._rng(i)
        rng.random()
        k = int(rng.integers(4, 11))
        return " ".join(self.pool[int(x)] for x in rng.integers(0, len(self.pool), k))

    def doc(self, i: int) -> tuple[str, str, int]:
        """(text, kind, group)."""
        kind, g = self.kind(i)
        if kind == "original":
            return self._original(i), kind, g
        base = self._original(g)
        rng = np.random.default_rng([self.seed, i, 1])
        if kind == "exact":
            if rng.random() < 0.5:
                return base, kind, g
            from corpusmill.curation.dedup.normalize import normalize_text

            v = base.upper().replace(". ", ".\n")
            if normalize_text(v) != normalize_text(base):  # case folding is not always reversible (e.g. ß -> SS)
                v = base.replace(". ", ".\n")
            return v, kind, g
        words = base.split()
        e = int(np.ceil(len(words) * rng.random() * MAX_EDIT_RATE))
        for _ in range(e):
            op, pos = int(rng.integers(0, 3)), int(rng.integers(0, len(words)))
            w = self.words[int(rng.integers(0, len(self.words)))]
            if op == 0:
                words[pos] = w
            elif op == 1 and len(words) > 6:
                del words[pos]
            else:
                words.insert(pos, w)
        return " ".join(words), kind, g


TRUTH_SCHEMA = pa.schema([("index", pa.int64()), ("id", pa.string()), ("group", pa.int64()), ("kind", pa.string()),
                          ("jaccard", pa.float64())])
_CORPUS: Corpus | None = None
_POOL: list[str] | None = None  # set before the worker processes fork


def _shard(args) -> dict:
    """Write one shard and its ground truth (``truth/part-k.parquet``); returns the truth columns."""
    import pyarrow.parquet as pq

    from corpusmill.curation.dedup.minhash import jaccard
    from corpusmill.curation.dedup.normalize import shingle_hashes

    global _CORPUS
    out, seed, lo, hi, k = args
    if _CORPUS is None or _CORPUS.seed != seed:
        _CORPUS = Corpus(seed, _POOL)
    corpus = _CORPUS
    cols: dict[str, list] = {"index": [], "id": [], "group": [], "kind": [], "jaccard": []}
    path = Path(out) / "docs" / f"part-{k:05d}.jsonl"
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(lo, hi):
            text, kind, g = corpus.doc(i)
            did = f"d{i:09d}"
            f.write(json.dumps({"id": did, "text": text}) + "\n")
            j = jaccard(shingle_hashes(text), shingle_hashes(corpus.doc(g)[0])) if kind == "near" else None
            for c, v in zip(cols, (i, did, g, kind, j)):
                cols[c].append(v)
    truth = Path(out) / "truth" / f"part-{k:05d}.parquet"
    pq.write_table(pa.table(cols, schema=TRUTH_SCHEMA), truth.with_name("." + truth.name + ".tmp"))
    os.replace(truth.with_name("." + truth.name + ".tmp"), truth)
    os.replace(tmp, path)
    return cols


def _known_truth(out: Path, seed: int, lo: int, hi: int, k: int) -> dict:
    """Truth of a shard written before truth was kept per shard: kind and group only (no jaccard)."""
    import pyarrow.parquet as pq

    p = out / "truth" / f"part-{k:05d}.parquet"
    if p.exists():
        return pq.read_table(p).to_pydict()
    c = Corpus(seed, pool=[])
    kinds = [c.kind(i) for i in range(lo, hi)]
    return {"index": list(range(lo, hi)), "id": [f"d{i:09d}" for i in range(lo, hi)], "group": [g for _, g in kinds],
            "kind": [kd for kd, _ in kinds], "jaccard": [None] * (hi - lo)}


def generate(out: Path, docs: int, seed: int = 0, shard_docs: int = 10_000, processes: int = 2,
             append: bool = False) -> dict:
    """Write the corpus. ``append``: shards already on disk (a larger or interrupted earlier run with the
    same seed and shard size) are kept and only the missing ones generated (document i depends only on
    (seed, i), so the result is the same corpus)."""
    import multiprocessing as mp

    import pyarrow.parquet as pq

    global _POOL
    pool = _POOL = sentence_pool()
    (out / "docs").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    jobs = [(str(out), seed, lo, min(docs, lo + shard_docs), k) for k, lo in enumerate(range(0, docs, shard_docs))]
    have = {j[4] for j in jobs if append and (out / "docs" / f"part-{j[4]:05d}.jsonl").exists()}
    if append and have:
        old = json.loads((out / "corpus.json").read_text()) if (out / "corpus.json").exists() else {}
        if old.get("seed", seed) != seed or old.get("shard_docs", shard_docs) != shard_docs:
            raise SystemExit(f"--append: {out} holds a corpus of another seed or shard size")
    todo = [j for j in jobs if j[4] not in have]
    if processes > 1 and len(todo) > 1:
        with mp.get_context("fork").Pool(processes) as p:
            made = p.map(_shard, todo, chunksize=1)
    else:
        made = [_shard(j) for j in todo]
    by_k = dict(zip((j[4] for j in todo), made))
    parts = [by_k[j[4]] if j[4] in by_k else _known_truth(out, *j[1:]) for j in jobs]
    cols = {c: [v for part in parts for v in part[c]] for c in parts[0]} if parts else {}
    pq.write_table(pa.table(cols, schema=TRUTH_SCHEMA), out / "truth.parquet")
    kinds = {k: cols["kind"].count(k) for k in ("original", "exact", "near")}
    js = np.array([j for j in cols["jaccard"] if j is not None])
    meta = {"docs": docs, "seed": seed, "shard_docs": shard_docs, "pool_sentences": len(pool), "kinds": kinds,
            "generated_shards": len(todo), "kept_shards": len(have),
            "near_with_jaccard": int(js.size),
            "near_jaccard_below_0.8": float((js < 0.8).mean()) if js.size else None,
            "near_jaccard_below_0.7": float((js < 0.7).mean()) if js.size else None}
    (out / "corpus.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def truth_arrays(docs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(group, kind) of the first ``docs`` documents, without generating their text."""
    c = Corpus(seed, pool=[])
    kinds = [c.kind(i) for i in range(docs)]
    return np.array([g for _, g in kinds]), np.array([k for k, _ in kinds])


def evaluate(survivor: np.ndarray, group: np.ndarray, kind: np.ndarray) -> dict:
    """Precision / recall of a dedup result against the ground truth. ``survivor[i]``: index of the
    survivor of document i's cluster (i itself when it is kept or in no cluster); ``group`` / ``kind``
    from ``truth.parquet``. A rejected document is correct when its survivor copies the same original."""
    i = np.arange(survivor.size)
    rejected = survivor != i
    right = rejected & (group == group[survivor])
    out = {"rejected": int(rejected.sum()), "wrong_merges": int((rejected & ~right).sum()),
           "precision": round(float(right.sum() / max(1, rejected.sum())), 5)}
    for k in ("exact", "near"):
        planted = kind == k
        out[f"recall_{k}"] = round(float((right & planted).sum() / max(1, planted.sum())), 5)
    return out


def run_survivors(run_dir: str, shard_docs: int, docs: int) -> np.ndarray:
    """``survivor`` array of a corpusmill run over the generated corpus (its curated + dropped files)."""
    import pyarrow.dataset as ds

    surv = np.arange(docs)
    idx_of: dict[str, int] = {}
    rows = []
    for sub in ("curated", "dropped"):
        t = ds.dataset(f"{run_dir}/{sub}", format="parquet").to_table(
            columns=["id", "source_file", "position", "dedup_cluster"])
        for d in t.to_batches():
            for did, sf, pos, cl in zip(*(d.column(c).to_pylist() for c in ("id", "source_file", "position", "dedup_cluster"))):
                i = int(re.search(r"part-(\d+)", sf).group(1)) * shard_docs + int(pos)
                idx_of[did] = i
                if cl is not None:
                    rows.append((i, cl))
    for i, cl in rows:
        surv[i] = idx_of[cl]
    return surv


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard-docs", type=int, default=10_000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--append", action="store_true", help="keep the shards already in OUT, generate the missing ones")
    a = ap.parse_args(argv)
    print(json.dumps(generate(a.out, a.docs, a.seed, a.shard_docs, a.processes, a.append)))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
