"""Cost of extraction's nesting-depth guard (``curation/extract.py`` ``nesting_depth``) relative to
resiliparse's extraction itself, on every HTML page of the shared WARCs, with the previous regex scan
(``depth_scan_regex`` behind the same '<'-count pre-check it had) alongside.

    .venv/bin/python benchmarks/bench_extract_guard.py [--repeat 25]

The three are interleaved pass by pass (one pass = all pages); CPU seconds of this process, median and
minimum over the passes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=25)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    from resiliparse.extract.html2text import extract_plain_text

    from corpusmill.curation.extract import _RESILIPARSE_DEFAULTS, MAX_MAIN_CONTENT_DEPTH, depth_scan_regex, nesting_depth
    from corpusmill.curation.readers import get_reader

    stop = MAX_MAIN_CONTENT_DEPTH + 1
    pages = []
    for p in sorted((Path(args.data) / "warc").glob("*.warc.gz")):
        with open(p, "rb") as f:
            pages += [r.text for r in get_reader("warc").records(f, str(p)) if r.metadata.get("needs_extraction")]

    def old_guard(h):  # the guard before: a '<' count, then a Python regex scan of every tag
        return 0 if h.count("<") < stop else depth_scan_regex(h, stop)

    runs = {"guard (numpy)": lambda h: nesting_depth(h), "guard before (regex)": old_guard,
            "resiliparse extraction": lambda h: extract_plain_text(h, **_RESILIPARSE_DEFAULTS)}
    cpu = {k: [] for k in runs}
    load0 = os.getloadavg()[0]
    for _ in range(args.repeat):
        for name, fn in runs.items():
            c0 = time.process_time()
            for h in pages:
                fn(h)
            cpu[name].append(time.process_time() - c0)
    med = {k: statistics.median(v) for k, v in cpu.items()}
    low = {k: min(v) for k, v in cpu.items()}
    print(f"{len(pages)} HTML pages, {sum(h.count('<') >= stop for h in pages)} with >= {stop} '<'; "
          f"{args.repeat} interleaved passes; load average {load0:.2f} -> {os.getloadavg()[0]:.2f}")
    print("| per pass | CPU ms (median) | CPU ms (min) | / extraction (median) |")
    print("| --- | ---: | ---: | ---: |")
    for k in runs:
        print(f"| {k} | {med[k] * 1e3:.1f} | {low[k] * 1e3:.1f} | {med[k] / med['resiliparse extraction']:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
