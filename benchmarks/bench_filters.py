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

``--e2e``: the whole one-worker pipeline as the acceptance of issue 17 states it, both sides as chains of
datatrove pipeline steps run in this process: the same documents written once to a ``.jsonl.gz`` shard ->
reader -> language ID (fastText lid.176.ftz for both, English kept at 0.65) -> Gopher repetition -> Gopher
quality -> C4 -> FineWeb -> Parquet. datatrove: ``JsonlReader``, ``LanguageFilter``, its four filters,
``ParquetWriter``. corpusmill: ``ShardReaderStep`` (jsonl reader), ``StageStep`` per stage, ``SinkStep``
(curated + dropped Parquet + manifest: it does more than datatrove's writer). ``--repeat`` runs alternate
which pipeline goes first; medians of wall and CPU seconds, our memos emptied before each of our runs
(``--warm`` keeps them). A disagreement = a document kept by one side only, or kept by both with a
different text, language or language score; drop counts per (stage, reason) are compared too.

    .venv/bin/python benchmarks/bench_filters.py --e2e [--repeat 3] [--limit N] [--warm]
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
from corpusmill.curation.registry import build_stage  # noqa: E402

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
    ap.add_argument("--warm", action="store_true", help="also time a second pass of our chain (warm memo); "
                    "--e2e: keep our memos between repeats")
    ap.add_argument("--e2e", action="store_true", help="reader + language ID + chain + Parquet, both sides (see above)")
    ap.add_argument("--repeat", type=int, default=3, help="--e2e: runs of each pipeline, interleaved")
    ap.add_argument("--lid-prep", choices=["datatrove", "corpusmill"], default="datatrove",
                    help="--e2e: our language_id's text_prep (corpusmill = our defaults: NFC, Unicode whitespace, 10k chars)")
    ap.add_argument("--profile", metavar="FILE", help="--e2e: cProfile our pipeline's last run into FILE")
    args = ap.parse_args(argv)
    if args.e2e:
        return end_to_end(args)

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


# -- --e2e: reader -> language ID -> chain -> Parquet, both as datatrove pipeline steps -----------------

def _write_shard(samples, path: Path) -> None:
    import gzip
    import json

    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i, s in enumerate(samples):
            f.write(json.dumps({"id": str(i), "text": s.text}, ensure_ascii=False) + "\n")


def _drain(steps) -> None:
    data = None
    for step in steps:
        data = step(data, rank=0, world_size=1)
    for _ in data:
        pass


def datatrove_pipeline(shard_dir: Path, out: Path, lid_path: str):
    from datatrove.pipeline.filters import LanguageFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import ParquetWriter
    from fasttext.FastText import _FastText

    lid = LanguageFilter(languages=["en"])  # FineWeb's step; threshold 0.65
    lid.model._model = _FastText(lid_path)  # the same lid.176.ftz as ours (its own download is offline here)
    return [JsonlReader(str(shard_dir), glob_pattern="*.jsonl.gz"), lid, *datatrove_chain(), ParquetWriter(str(out))]


def our_pipeline(shard: Path, out: Path, lid_params: dict):
    from corpusmill.pipelines.datatrove_steps import ShardReaderStep, SinkStep, StageStep
    from corpusmill.pipelines.inputs import Shard

    sh = Shard(str(shard), shard.name, "jsonl", size=shard.stat().st_size)
    stages = [StageStep("language_id", {"languages": ["en"], **lid_params}), StageStep("gopher_repetition"),
              StageStep("gopher_quality"), StageStep("c4", {"filter_no_terminal_punct": False}), StageStep("fineweb")]
    return [ShardReaderStep([sh], str(out), "bench", skip_done=False), *stages, SinkStep(str(out), recipe_hash="bench")]


def _kept_datatrove(out: Path) -> dict[int, tuple]:
    import pyarrow.parquet as pq

    rows = {}
    for f in sorted(out.glob("*.parquet")):
        for r in pq.read_table(f).to_pylist():
            md = r.get("metadata") or {}
            score = md.get("language_score")  # fastText's can exceed 1 by ~1e-5; ours are capped at 1.0
            rows[int(r["id"])] = (r["text"], md.get("language"), None if score is None else min(1.0, score))
    return rows


def _kept_ours(out: Path) -> tuple[dict[int, tuple], dict[tuple, int]]:
    import pyarrow.parquet as pq

    rows = {}
    for f in sorted((out / "curated").glob("*.parquet")):
        for r in pq.read_table(f, columns=["position", "text", "language", "language_score"]).to_pylist():
            rows[r["position"]] = (r["text"], r["language"], r["language_score"])
    drops: dict[tuple, int] = {}
    for f in sorted((out / "dropped").glob("*.parquet")):
        for r in pq.read_table(f, columns=["stage", "reason"]).to_pylist():
            drops[(r["stage"], r["reason"])] = drops.get((r["stage"], r["reason"]), 0) + 1
    return rows, drops


def _drops_datatrove(steps, n_docs: int) -> dict[tuple, int]:
    names = ["language_id", *STAGES]
    # datatrove's JsonlReader skips a document with empty text (a warning, no count); ours reads it and
    # language_id drops it: counted here as a language_id drop
    seen = int(steps[1].stats.stats["total"].total)
    drops: dict[tuple, int] = {("language_id", None): n_docs - seen}
    for name, step in zip(names, steps[1:-1]):
        for key, stat in step.stats.stats.items():
            if key.startswith("dropped_"):
                drops[(name, key[len("dropped_"):])] = int(stat.total)
            elif key == "dropped" and name == "language_id":  # LanguageFilter returns a bare False
                drops[(name, None)] += int(stat.total)
    return drops


def end_to_end(args) -> int:
    import os
    import shutil
    import statistics
    import tempfile

    from corpusmill.curation.assets import ensure_lid_model
    from corpusmill.curation.text.english_words import clear_memos

    samples = benchmark_mix()
    if args.limit:
        samples = samples[: args.limit]
    tmp = Path(tempfile.mkdtemp(prefix="bench-filters-e2e-"))
    try:
        shard_dir = tmp / "input"
        shard_dir.mkdir()
        shard = shard_dir / "mix.jsonl.gz"
        _write_shard(samples, shard)
        n_bytes = sum(len(s.text.encode("utf-8")) for s in samples)
        print(f"input: {len(samples)} documents, {n_bytes / 1e6:.2f} MB in one shard ({shard.stat().st_size / 1e6:.2f} MB "
              f".jsonl.gz); web {sum(s.source == 'webtext' for s in samples)}, books "
              f"{sum(s.source == 'books' for s in samples)}, wikipedia {sum(s.source == 'wikipedia' for s in samples)}")
        lid_path = str(ensure_lid_model())
        # "datatrove": fastText sees what datatrove's LanguageFilter gives it (whole text, newlines -> spaces)
        lid_params = {"text_prep": "datatrove", "max_chars": None} if args.lid_prep == "datatrove" else {}

        # one-time setup outside the clock: spaCy + fastText for datatrove, rule tables + fastText for us
        t0 = time.perf_counter()
        warm = datatrove_pipeline(shard_dir, tmp / "warm-dt", lid_path)
        run_datatrove(warm[2:-1], "Warm up. This loads the tokenizer and the sentencizer once.", "w")
        warm[1].model.model.predict("warm up")
        t_dt_setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        english()
        from corpusmill.curation.filters.language import LanguageID

        LanguageID().setup()
        t_our_setup = time.perf_counter() - t0

        times: dict[str, list[tuple[float, float]]] = {"datatrove": [], "corpusmill": []}
        loads = [os.getloadavg()[0]]
        last = {}
        for r in range(args.repeat):
            order = ("datatrove", "corpusmill") if r % 2 == 0 else ("corpusmill", "datatrove")
            for who in order:
                out = tmp / f"out-{who}-{r}"
                if who == "datatrove":
                    steps = datatrove_pipeline(shard_dir, out, lid_path)
                    steps[1].model._model = warm[1].model._model  # loaded once, as in one worker
                else:
                    steps = our_pipeline(shard, out, lid_params)
                    for st in steps[1:-1]:
                        st._stage = build_stage(st.stage_name, st.params)
                        if st.stage_name == "language_id":
                            st._stage._model = _our_lid_model(lid_path)  # loaded once, as in one worker
                        st._stage.setup()
                    if not args.warm:
                        clear_memos()
                prof = None
                if who == "corpusmill" and args.profile and r == args.repeat - 1:
                    import cProfile

                    prof = cProfile.Profile()
                w0, c0 = time.perf_counter(), time.process_time()
                if prof:
                    prof.enable()
                _drain(steps)
                if prof:
                    prof.disable()
                    prof.dump_stats(args.profile)
                times[who].append((time.perf_counter() - w0, time.process_time() - c0))
                loads.append(os.getloadavg()[0])
                last[who] = (steps, out)
                print(f"  run {r + 1} {who:10s} wall {times[who][-1][0]:7.2f}s  cpu {times[who][-1][1]:7.2f}s  "
                      f"load {loads[-1]:.2f}", flush=True)

        dt_kept = _kept_datatrove(last["datatrove"][1])
        our_kept, our_drops = _kept_ours(last["corpusmill"][1])
        dt_drops = _drops_datatrove(last["datatrove"][0], len(samples))
        our_drops_cmp = {((s, None) if s == "language_id" else (s, rsn)): 0 for s, rsn in our_drops}
        for (s, rsn), c in our_drops.items():
            our_drops_cmp[(s, None) if s == "language_id" else (s, rsn)] += c
        dis = []
        for pos in sorted(set(dt_kept) | set(our_kept)):
            a, b = dt_kept.get(pos), our_kept.get(pos)
            if a is None or b is None or a[0] != b[0] or a[1] != b[1] or abs((a[2] or 0) - (b[2] or 0)) > 1e-6:
                dis.append((samples[pos].id, "datatrove kept" if b is None else "ours kept" if a is None else "differ",
                            a and a[1:], b and b[1:]))
        med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in times.items()}
        print(f"setup (not timed): datatrove {t_dt_setup:.2f}s, ours {t_our_setup:.2f}s")
        for k in ("datatrove", "corpusmill"):
            print(f"{k:10s} median of {args.repeat}: wall {med[k][0]:7.2f}s ({len(samples) / med[k][0]:6.1f} docs/s, "
                  f"{n_bytes / 1e6 / med[k][0]:.2f} MB/s)  cpu {med[k][1]:7.2f}s")
        pairs = [(d[0] / o[0], d[1] / o[1]) for d, o in zip(times["datatrove"], times["corpusmill"])]
        print(f"speed-up (medians): wall {med['datatrove'][0] / med['corpusmill'][0]:.1f}x, "
              f"cpu {med['datatrove'][1] / med['corpusmill'][1]:.1f}x; per run pair (wall/cpu): "
              + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in pairs) + f"; memo {'warm' if args.warm else 'cold each run'}")
        print(f"kept: datatrove {len(dt_kept)}, corpusmill {len(our_kept)}; drops (stage, reason): "
              + ", ".join(f"{k[0]}/{k[1]} {v}" for k, v in sorted(dt_drops.items(), key=str)))
        if dt_drops != our_drops_cmp:
            print(f"DROP COUNTS DIFFER: ours {sorted(our_drops_cmp.items(), key=str)}")
        print(f"decision disagreements (final kept set): {len(dis)}")
        for d in dis[:20]:
            print("  ", d)
        print(f"python {platform.python_version()}, {platform.machine()}, load average (1 min) before/after runs: "
              + " ".join(f"{x:.2f}" for x in loads) + f"; at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0 if not dis and dt_drops == our_drops_cmp else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _our_lid_model(path: str, _cache={}):
    from corpusmill.curation.filters.language import load_fasttext_model

    if path not in _cache:
        _cache[path] = load_fasttext_model(path)
    return _cache[path]


if __name__ == "__main__":
    raise SystemExit(main())
