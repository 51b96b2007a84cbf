"""Throughput of the issue-16 stages on the shared web text (727 documents), against datatrove's
PIIFormatter and URLFilter, interleaved rounds, medians.

    .venv/bin/python benchmarks/bench_model_stages.py [--data ../shared/data] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import time
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.formatters import PIIFormatter

from corpusmill.curation.document import new_document
from corpusmill.curation.filters.decontamination import Decontaminate
from corpusmill.curation.filters.pii import PII
from corpusmill.curation.filters.quality import QualityClassifier
from corpusmill.curation.filters.url import URLFilter
from corpusmill.curation.stage import apply_stage


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    docs = []
    for f in sorted(Path(args.data, "webtext").glob("*.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                o = json.loads(line)
                url = (o.get("metadata") or {}).get("url") or o["id"]
                docs.append((o.get("text") or "", url))
    tox = Path(args.data, "toxicity")
    ours = {
        "pii": PII(),
        "url_filter": URLFilter(),
        "quality": QualityClassifier(action="tag"),
        "decontaminate": Decontaminate([{"path": str(tox / "hatecheck_test_suite_cases.csv"), "fields": ["test_case"]},
                                        {"path": str(tox / "wikitox_toxicity_nonfuzzed_testset.csv"), "fields": ["comment"]}],
                                       action="tag"),
    }
    t0 = time.perf_counter()
    for st in ours.values():
        st.setup()
    setup_s = time.perf_counter() - t0
    dt_pii = PIIFormatter()

    def run_ours(st):
        for i, (t, u) in enumerate(docs):
            apply_stage(st, new_document(t, "w", i, url=u))

    def run_dt_pii():
        for i, (t, u) in enumerate(docs):
            dt_pii.format(t)

    runs = {name: (lambda st=st: run_ours(st)) for name, st in ours.items()}
    runs["datatrove PIIFormatter"] = run_dt_pii
    times = {k: [] for k in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    mb = sum(len(t.encode()) for t, _ in docs) / 1e6
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"{name:24s} {len(docs) / m:9.1f} docs/s  {mb / m:6.2f} MB/s  (median of {len(ts)})")
    print(f"pii / datatrove PIIFormatter time ratio: "
          f"{statistics.median(times['pii']) / statistics.median(times['datatrove PIIFormatter']):.2f}")
    print(f"setup (models, lists, decontamination index of {len(ours['decontaminate'].index):,} 13-grams): {setup_s:.1f} s")
    print(f"{len(docs)} documents, {mb:.2f} MB; load {os.getloadavg()}")


if __name__ == "__main__":
    main()
