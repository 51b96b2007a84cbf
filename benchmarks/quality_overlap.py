"""How the shipped quality classifier's decisions overlap with the heuristic chain (FineWeb order:
Gopher repetition, Gopher quality, C4 with the terminal-punctuation rule off, FineWeb) on the shared
web text. Documents the classifier was trained on are reported apart from its held-out ones.

    .venv/bin/python benchmarks/quality_overlap.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from pathlib import Path

from corpusmill.curation.document import is_alive, new_document
from corpusmill.curation.filters import C4Quality, FineWebQuality, GopherQuality, GopherRepetition
from corpusmill.curation.filters.quality import QualityClassifier
from corpusmill.curation.stage import apply_stage
from corpusmill.tools.quality_train import is_heldout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--top-fraction", type=float, default=0.3)
    args = ap.parse_args()
    q = QualityClassifier(action="tag")
    chain = [GopherRepetition(), GopherQuality(), C4Quality(filter_no_terminal_punct=False), FineWebQuality()]
    cut_top = QualityClassifier(top_fraction_of_training_crawl=args.top_fraction).threshold
    rows = []
    for f in sorted(Path(args.data, "webtext").glob("*.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                text = json.loads(line).get("text") or ""
                d = new_document(text, f.name, i, source_kind="web")
                for st in chain:
                    apply_stage(st, d)
                held = is_heldout(f"{os.path.basename(f)}#{i}", 0.2, 0)
                rows.append((is_alive(d), q.score(text), held, len(text.split()) >= 50))
    for label, sel in (("held-out", lambda r: r[2]), ("trained on", lambda r: not r[2]), ("all", lambda r: True)):
        part = [r for r in rows if sel(r) and r[3]]
        for name, cut in (("threshold 0.5", 0.5), (f"top {args.top_fraction:.0%} (score >= {cut_top:.4f})", cut_top)):
            both = sum(r[0] and r[1] >= cut for r in part)
            only_chain = sum(r[0] and r[1] < cut for r in part)
            only_q = sum((not r[0]) and r[1] >= cut for r in part)
            neither = sum((not r[0]) and r[1] < cut for r in part)
            chain_kept = both + only_chain
            q_kept = both + only_q
            print(f"{label:10s} {name:34s} docs {len(part):4d}  chain keeps {chain_kept:3d}  classifier keeps {q_kept:3d}  "
                  f"both {both:3d}  chain only {only_chain:3d}  classifier only {only_q:3d}  neither {neither:3d}  "
                  f"agreement {(both + neither) / max(1, len(part)):.3f}")
    print(f"load {os.getloadavg()}")


if __name__ == "__main__":
    main()
