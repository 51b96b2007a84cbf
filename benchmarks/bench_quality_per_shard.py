"""What ``quality: top_fraction_per_shard`` holds and what a second pass would cost instead, per shared
web-text shard: the shard is read and run through the Gopher / C4 / FineWeb chain, then through the quality
stage streaming (``top_fraction_of_training_crawl``: nothing held) and per shard (documents held until the
shard's end). Reports the extra peak Python memory of holding (tracemalloc), the shard's text size, and
the seconds a two-pass scheme would repeat (read + chain) against the quality stage's own seconds.

    nice -n 5 .venv/bin/python benchmarks/bench_quality_per_shard.py [--data ../shared/data] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
from pathlib import Path

from corpusmill.curation.registry import build_stage
from corpusmill.curation.stage import apply_stage, apply_stage_per_shard
from corpusmill.pipelines.inputs import Shard
from corpusmill.pipelines.shard_reading import read_shard

CHAIN = [("gopher_repetition", {}), ("gopher_quality", {}), ("c4", {"filter_no_terminal_punct": False}), ("fineweb", {})]


def chained(shard: Shard, chain):
    for d in read_shard(shard):
        for st in chain:
            apply_stage(st, d)
        yield d


def run(shard: Shard, chain, quality, per_shard: bool, trace: bool = False) -> tuple[float, float, int]:
    """(read + chain seconds, quality seconds, peak traced bytes or 0) over one shard; timed runs are not
    traced (tracemalloc slows Python code several times)."""
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    docs = chained(shard, chain)
    q: dict[str, float] = {}
    if per_shard:
        docs = apply_stage_per_shard(quality, docs, q)
    else:
        def streaming(docs):
            for d in docs:
                t = time.perf_counter()
                apply_stage(quality, d)
                q["s"] = q.get("s", 0.0) + time.perf_counter() - t
                yield d
        docs = streaming(docs)
    for _d in docs:
        pass
    total = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    qs = sum(q.values())
    return total - qs, qs, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    chain = [build_stage(n, p) for n, p in CHAIN]
    stream_q = build_stage("quality", {"top_fraction_of_training_crawl": 0.3})
    shard_q = build_stage("quality", {"top_fraction_per_shard": 0.3})
    for st in chain + [stream_q, shard_q]:
        st.setup()
    files = sorted(Path(args.data, "webtext").glob("dolma_*.gz"))
    print(f"load before {os.getloadavg()}")
    print("| shard | records | text MB | peak MB streaming | peak MB per shard | held extra MB | read + chain s "
          "| quality s (streaming) | quality s (per shard) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f in files:
        shard = Shard(path=str(f), source_file=f"webtext/{f.name}", reader="jsonl", options={}, size=f.stat().st_size)
        texts = [d.text for d in read_shard(shard) if "cm_event" not in d.metadata]
        mb = sum(len(t.encode()) for t in texts) / 1e6
        res = {"stream": [], "shard": []}
        for _ in range(args.rounds):  # interleaved
            res["stream"].append(run(shard, chain, stream_q, False))
            res["shard"].append(run(shard, chain, shard_q, True))
        med = {"chain": statistics.median(r[0] for v in res.values() for r in v)}
        med.update({k: statistics.median(r[1] for r in v) for k, v in res.items()})
        peak = {k: run(shard, chain, stream_q if k == "stream" else shard_q, k == "shard", trace=True)[2] / 1e6
                for k in ("stream", "shard")}
        print(f"| {f.name} | {len(texts)} | {mb:.2f} | {peak['stream']:.2f} | {peak['shard']:.2f} | "
              f"{peak['shard'] - peak['stream']:.2f} | {med['chain']:.2f} | {med['stream']:.2f} | {med['shard']:.2f} |")
    print(f"load after {os.getloadavg()}")


if __name__ == "__main__":
    main()
