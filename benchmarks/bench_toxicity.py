"""Benchmark: documents/s of each toxicity scorer through the stage, one document per call vs batched.

Texts: the test rows of every shared labelled set (tweets, comments, HateCheck cases; 13,969 texts) and
the 727 dolma web-text documents (3.1 MB). Each scorer runs as the engines run it: ``apply_stage`` per
document (what the stage did before the batch hook) and ``apply_stage_batch`` over batches of
``--batch`` documents. Per-document ``profanity_check`` costs ~50-100 ms a call, so that mode runs on the
first ``--single-limit`` texts of each corpus and is compared with batched on the SAME texts. Modes and
scorers alternate within each repeat so they see the same load; medians over ``--repeats``; the load
average is printed before and after.

    .venv/bin/python benchmarks/bench_toxicity.py [--repeats 3] [--batch 256] [--single-limit 300]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpusmill.curation.document import new_document  # noqa: E402
from corpusmill.curation.filters.toxicity import Toxicity  # noqa: E402
from corpusmill.curation.stage import apply_stage, apply_stage_batch  # noqa: E402
from corpusmill.tools.toxicity_sets import SETS, load_set  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def corpora() -> dict[str, list[str]]:
    labelled = [r.text for name in SETS for r in load_set(name, SHARED / "toxicity") if r.split == "test"]
    web = []
    for p in sorted((SHARED / "webtext").glob("*.json*.gz")):
        with gzip.open(p, "rt", encoding="utf-8") as f:
            web += [json.loads(line)["text"] for line in f if line.strip()]
    return {"labelled test rows": labelled, "web text": web}


def run(stage: Toxicity, texts: list[str], batch: int) -> float:
    docs = [new_document(t, "bench.jsonl", i) for i, t in enumerate(texts)]
    t0 = time.perf_counter()
    if batch <= 1:
        for d in docs:
            apply_stage(stage, d)
    else:
        for i in range(0, len(docs), batch):
            apply_stage_batch(stage, docs[i : i + batch])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--single-limit", type=int, default=300)
    ap.add_argument("--scorers", default="wordlist,fasttext,profanity_check")
    args = ap.parse_args()
    print(f"load before: {os.getloadavg()}")
    stages = {}
    for name in args.scorers.split(","):
        s = Toxicity(scorer=name, action="tag", batch_size=args.batch)
        s.setup()
        stages[name] = s
    data = corpora()
    for cname, texts in data.items():
        mb = sum(len(t.encode()) for t in texts) / 1e6
        few = texts[: args.single_limit]
        print(f"\n{cname}: {len(texts)} texts, {mb:.1f} MB; one-at-a-time vs batched on the first {len(few)}")
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for name, stage in stages.items():
                for mode, txts, b in (("single", few, 1), ("batched-same", few, args.batch), ("batched-all", texts, args.batch)):
                    times.setdefault((name, mode), []).append(run(stage, txts, b))
        print(f"| scorer | one at a time (docs/s) | batched, same texts (docs/s) | speed-up | batched, all {len(texts)} (docs/s, MB/s) |")
        print("| --- | --- | --- | --- | --- |")
        for name in stages:
            single = statistics.median(times[(name, "single")])
            same = statistics.median(times[(name, "batched-same")])
            allt = statistics.median(times[(name, "batched-all")])
            print(
                f"| {name} | {len(few) / single:,.0f} | {len(few) / same:,.0f} | {single / same:.1f}x | "
                f"{len(texts) / allt:,.0f} ({mb / allt:.2f}) |"
            )
    print(f"\nload after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
