"""Reader and HTML-extraction throughput on the shared real data, one process, one core.

Measures, side by side in one run:

- our ``warc`` reader alone, then + ``extract`` with resiliparse, then + trafilatura, on the shared
  CC-MAIN-2020-34 WARC excerpt (16 HTML responses, ~0.55 MB of HTML; read ``--repeat`` times);
- datatrove's ``WarcReader`` + datatrove's ``Trafilatura`` extractor on the same file (its defaults:
  favour_precision, deduplicate, 1 s timeout sandbox) for the ratio;
- our ``wikipedia`` reader on the enwiki dump (206 pages, 6.1 MB of XML; wikitext -> text included);
- our ``jsonl`` reader on the 697-doc dolma file.

docs/s counts documents out of the reader (HTML pages / candidate wiki pages / JSON lines);
MB/s is MB (10^6 bytes) of HTML, XML or JSONL text per second (uncompressed), the input side.
Both per wall-clock second and per CPU second (this process plus finished child processes, so
datatrove's extractor sandbox counts): on a shared machine the CPU figures are the stable ones.

    .venv/bin/python benchmarks/bench_readers.py [--repeat 20] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from corpusmill.curation.document import new_document  # noqa: E402
from corpusmill.curation.extract import Extract  # noqa: E402
from corpusmill.curation.readers import get_reader  # noqa: E402
from corpusmill.curation.stage import apply_stage  # noqa: E402


def _read(reader: str, data: bytes, name: str, **opts) -> list:
    return list(get_reader(reader, **opts).records(io.BytesIO(data), name))


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (datatrove's extractor sandbox)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def timed(fn, repeat: int) -> tuple[tuple[float, float], object]:
    fn()  # warm up: imports, caches
    t, c = time.perf_counter(), _cpu()
    out = None
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - t, _cpu() - c), out


def row(name: str, secs: tuple[float, float], docs: int, mbytes: float) -> dict:
    wall, cpu = secs
    return {"name": name, "s": wall, "cpu": cpu, "docs": docs, "docs_s": docs / wall, "mb_s": mbytes / wall,
            "docs_cpu": docs / cpu, "mb_cpu": mbytes / cpu}


def bench_warc(path: Path, repeat: int) -> list[dict]:
    data = path.read_bytes()
    recs = _read("warc", data, path.name)
    html_mb = sum(len(r.text.encode("utf-8")) for r in recs) / 1e6
    n = len(recs)
    rows = []
    secs, _ = timed(lambda: _read("warc", data, path.name), repeat)
    rows.append(row("warc reader", secs, n * repeat, html_mb * repeat))
    for extractor in ("resiliparse", "trafilatura"):
        stage = Extract(extractor)
        stage.setup()

        def run(stage=stage):
            docs = [new_document(r.text, "b", r.position, **r.metadata) for r in _read("warc", data, path.name)]
            return [apply_stage(stage, d) for d in docs]

        reps = repeat if extractor == "resiliparse" else max(1, repeat // 4)
        secs, _ = timed(run, reps)
        rows.append(row(f"warc reader + {extractor}", secs, n * reps, html_mb * reps))
    dt = bench_datatrove(path, max(1, repeat // 4), html_mb)
    if dt is not None:
        rows.append(dt)
    return rows


def bench_datatrove(path: Path, repeat: int, html_mb: float) -> dict | None:
    try:
        import cchardet  # noqa: F401  (datatrove's WarcReader needs datatrove[io]: warcio, faust-cchardet, python-magic)
        import magic  # noqa: F401
        import warcio  # noqa: F401
    except ImportError as e:
        print(f"skipping datatrove WarcReader: {e} (pip install 'datatrove[io]')", file=sys.stderr)
        return None
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader
    from datatrove.utils.logging import logger

    logger.remove()  # its per-file INFO lines would drown the table

    def run():
        docs = list(WarcReader(str(path.parent), glob_pattern=path.name).run())
        return list(Trafilatura().run(iter(docs))), len(docs)

    secs, (out, n) = timed(run, repeat)
    return row("datatrove WarcReader + Trafilatura", secs, n * repeat, html_mb * repeat)


def bench_plain(reader: str, path: Path, repeat: int, text_mb: float, label: str) -> dict:
    data = path.read_bytes()
    secs, recs = timed(lambda: _read(reader, data, path.name), repeat)
    return row(label, secs, len(recs) * repeat, text_mb * repeat)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20, help="passes over each small file (default 20)")
    ap.add_argument("--data", default=os.environ.get("CORPUSMILL_SHARED_DATA", str(REPO.parent / "shared" / "data")))
    args = ap.parse_args(argv)
    data = Path(args.data)
    import gzip
    import bz2

    enwiki = data / "wikipedia" / "enwiki-pages-articles1-shortened.xml.bz2"
    dolma = data / "webtext" / "dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
    rows = bench_warc(data / "warc" / "CC-MAIN-2020-34_sample.warc.gz", args.repeat)
    xml_mb = len(bz2.decompress(enwiki.read_bytes())) / 1e6
    rows.append(bench_plain("wikipedia", enwiki, max(1, args.repeat // 10), xml_mb, "wikipedia reader (enwiki, wikitext->text)"))
    jsonl_mb = len(gzip.decompress(dolma.read_bytes())) / 1e6
    rows.append(bench_plain("jsonl", dolma, max(1, args.repeat // 4), jsonl_mb, "jsonl reader (dolma 697 docs)"))

    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores visible, "
          f"load average {os.getloadavg()[0]:.2f}, repeat={args.repeat}")
    print()
    print("| run | docs | wall s | CPU s | docs/s (wall) | MB/s (wall) | docs per CPU-s | MB per CPU-s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['name']} | {r['docs']} | {r['s']:.2f} | {r['cpu']:.2f} | {r['docs_s']:.0f} | {r['mb_s']:.1f} "
              f"| {r['docs_cpu']:.0f} | {r['mb_cpu']:.1f} |")
    by = {r["name"]: r for r in rows}
    ours, theirs = by["warc reader + trafilatura"], by.get("datatrove WarcReader + Trafilatura")
    res = by["warc reader + resiliparse"]
    print()
    print("ratios of docs per CPU-second (wall-clock ratios in parentheses):")
    for a, b in [(res, ours), (res, theirs), (ours, theirs)]:
        if b is None:
            continue
        print(f"  {a['name']} / {b['name']}: {a['docs_cpu'] / b['docs_cpu']:.2f}x ({a['docs_s'] / b['docs_s']:.2f}x)")


if __name__ == "__main__":
    main()
