"""Benchmark: datatrove's heuristic filter chain vs corpusmill's, same input, one process.

Chain (FineWeb's order, without LanguageFilter, which downloads its model):
GopherRepetition -> GopherQuality -> C4 (terminal-punctuation rule off, as FineWeb) -> FineWebQuality.

Input: ``corpusmill.tools.derive_token_ratio.benchmark_mix`` -- all 727 dolma web-text documents plus the
Project Gutenberg books and the Wikipedia articles (wikitext crudely stripped) cut into ~5,000-character
chunks (~1,800 documents, ~8 MB). Each document is run through datatrove's chain (``filter()`` called
directly on a datatrove ``Document``, stopping at the first drop) and through ours (``apply_stage``,
signals recorded), one after the other, alternating which goes first, so both see the same machine load.
Model / rule loading (spaCy for datatrove, our English tables) happens before the clock starts, on one
warm-up document; our per-chunk memo starts empty.

A disagreement = different keep/drop, different dropping stage or reason, or different final text
(C4 rewrites the text it keeps).

    .venv/bin/python benchmarks/bench_filters.py [--limit N] [--warm]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datatrove.data import Document  # noqa: E402
from datatrove.pipeline.filters import (  # noqa: E402
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

from corpusmill.curation.document import REASON, STAGE, STATUS  # noqa: E402
from corpusmill.curation.filters import C4Quality, FineWebQuality, GopherQuality, GopherRepetition  # noqa: E402
from corpusmill.tools.shared_corpus import benchmark_mix  # noqa: E402
from corpusmill.curation.text.doc_stats import drop_stats  # noqa: E402
from corpusmill.curation.text.english_words import english  # noqa: E402
from corpusmill.curation.stage import apply_stage  # noqa: E402

STAGES = ["gopher_repetition", "gopher_quality", "c4", "fineweb"]


def datatrove_chain():
    return [
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
    ]


def our_chain():
    return [GopherRepetition(), GopherQuality(), C4Quality(filter_no_terminal_punct=False), FineWebQuality()]


def run_datatrove(chain, text: str, doc_id: str):
    doc = Document(text=text, id=doc_id, metadata={})
    for name, f in zip(STAGES, chain):
        r = f.filter(doc)
        if r is not True and not (isinstance(r, tuple) and r[0]):
            return (name, r[1] if isinstance(r, tuple) else None), doc.text
    return ("kept", None), doc.text


def run_ours(chain, text: str, doc_id: str):
    doc = Document(text=text, id=doc_id, metadata={})
    for f in chain:
        apply_stage(f, doc)
    md = doc.metadata
    drop_stats(doc)
    if STATUS in md:
        return (md[STAGE], md[REASON]), doc.text
    return ("kept", None), doc.text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents")
    ap.add_argument("--warm", action="store_true", help="also time a second pass of our chain (warm memo)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    samples = benchmark_mix()
    if args.limit:
        samples = samples[: args.limit]
    n_bytes = sum(len(s.text.encode("utf-8")) for s in samples)
    print(f"input: {len(samples)} documents, {n_bytes / 1e6:.2f} MB "
          f"(web {sum(s.source == 'webtext' for s in samples)}, books {sum(s.source == 'books' for s in samples)}, "
          f"wikipedia {sum(s.source == 'wikipedia' for s in samples)}); prepared in {time.perf_counter() - t0:.1f}s")

    dt, ours = datatrove_chain(), our_chain()
    t0 = time.perf_counter()
    run_datatrove(dt, "Warm up. This loads the tokenizer and the sentencizer once.", "warmup")
    t_dt_setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    english()
    for f in ours:
        f.setup()
    t_our_setup = time.perf_counter() - t0

    t_dt = t_ours = 0.0
    disagreements = []
    outcomes = {"kept": 0}
    for i, s in enumerate(samples):
        if i % 2 == 0:
            a = time.perf_counter(); r_dt = run_datatrove(dt, s.text, s.id); b = time.perf_counter()
            r_us = run_ours(ours, s.text, s.id); c = time.perf_counter()
            t_dt += b - a; t_ours += c - b
        else:
            a = time.perf_counter(); r_us = run_ours(ours, s.text, s.id); b = time.perf_counter()
            r_dt = run_datatrove(dt, s.text, s.id); c = time.perf_counter()
            t_ours += b - a; t_dt += c - b
        key = r_dt[0][0]
        outcomes[key] = outcomes.get(key, 0) + 1
        if r_dt != r_us:
            disagreements.append((s.id, r_dt[0], r_us[0], r_dt[1] == r_us[1]))

    n = len(samples)
    print(f"setup (not timed below): datatrove {t_dt_setup:.2f}s, ours {t_our_setup:.2f}s")
    print(f"datatrove chain: {t_dt:8.2f}s  {n / t_dt:8.1f} docs/s  {n_bytes / 1e6 / t_dt:6.2f} MB/s")
    print(f"our chain:       {t_ours:8.2f}s  {n / t_ours:8.1f} docs/s  {n_bytes / 1e6 / t_ours:6.2f} MB/s")
    print(f"speed-up: {t_dt / t_ours:.1f}x")
    print("outcomes (datatrove): " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    print(f"decision disagreements: {len(disagreements)}")
    for d in disagreements[:20]:
        print("  ", d)
    if args.warm:
        t0 = time.perf_counter()
        for s in samples:
            run_ours(ours, s.text, s.id)
        t = time.perf_counter() - t0
        print(f"our chain, second pass (warm memo): {t:.2f}s  {n / t:.1f} docs/s  {n_bytes / 1e6 / t:.2f} MB/s")
    print(f"python {platform.python_version()}, {platform.machine()}, load average at end: "
          f"{' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}")
    return 0 if not disagreements else 1


if __name__ == "__main__":
    raise SystemExit(main())
