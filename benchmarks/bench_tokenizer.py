"""Tokenizer training and packing, side by side on the same ~10 MB of ../shared/data text.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_tokenizer.py [--mb 10] [--vocab 16384] [--threads 2]
        [--repeat 2] [--write-results FILE]

Training (vocabulary ``--vocab``, ``--threads`` threads, the same documents: 95% by id hash, the other 5%
held out for bytes/token):
  * ours: ``train_tokenizer`` streaming the Parquet files (default backend "ours"; and with
    ``backend='rustbpe'`` / ``'hf'``); the numba merge loop is compiled / loaded from numba's cache once,
    before the timed runs (the cold cost is printed),
  * bpeasy on the same strings, when installed,
  * raw HF tokenizers: the same tokenizer config on the same strings, already in memory,
  * sentencepiece BPE (byte_fallback, identity normalisation) on the same strings, one document line per
    line (sentencepiece's input format; lines over its 4,192-byte default are raised with
    ``max_sentence_length``), with a profile of HF's phases (pre-tokenise+count vs merges).
Encoding / packing tokens/s on all the text (``--pack-only``: only these rows; the shared text is ~11 MB,
so a larger ``--mb`` packs the sample repeated, each copy with new ids):
  * ours: ``pack`` end to end in this process (Parquet read, tokenizer load and calibration, encode in
    ``--threads`` threads, .ds and documents.parquet writes, manifest),
  * datatrove ``DocumentTokenizer`` (local tokenizer.json, in-memory Documents, no shuffling),
  * HF ``encode_batch`` (not above 20 MB), our ``Encoder.encode_batch`` (tiktoken lists) and tiktoken
    ``encode_to_numpy`` (the call pack makes) alone on the in-memory texts, 1,000 documents per call.
Each timing is the median of ``--repeat`` interleaved runs (wall clock; CPU seconds alongside, the machine
may be shared).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def timed(fn, repeat: int):
    """(result of the last run, best wall seconds, CPU seconds of that run)."""
    best, cpu, out = float("inf"), 0.0, None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
        if wall < best:
            best, cpu = wall, time.process_time() - c0
    return out, best, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=10)
    ap.add_argument("--vocab", type=int, default=16384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--shared-data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--train-only", action="store_true", help="training rows only (no HF profile, no packing)")
    ap.add_argument("--pack-only", action="store_true", help="packing rows only (the tokenizer trained once, untimed)")
    ap.add_argument("--skip", default="", help="training rows to leave out, comma-separated: raw,ours_rustbpe,ours_hf,spm,bpeasy")
    ap.add_argument("--write-results", help="write a markdown fragment with the command and output here")
    args = ap.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # before tokenizers starts its pool
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

    import numpy as np
    import pyarrow.parquet as pq

    try:
        import sentencepiece as spm
    except ImportError:  # pip install sentencepiece (dev extra) for the third training row
        spm = None

    from corpusmill.tokenizer.fast_encode import Encoder
    from corpusmill.tokenizer.pack import pack
    from corpusmill.tokenizer.reader import id_unit
    from corpusmill.tokenizer.sample_corpus import write_sample_corpus
    from corpusmill.tokenizer.bpe import EOS, new_tokenizer, new_trainer
    from corpusmill.tokenizer.train import train_tokenizer

    lines: list[str] = []  # noqa: F841 (also the output collected for --write-results)

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    work = Path(tempfile.mkdtemp(prefix="bench-tok-"))
    copies = _sample_corpus(Path(args.shared_data), work / "curated", int(args.mb * 1e6))
    table = pq.read_table(sorted((work / "curated").glob("*.parquet")), columns=["id", "text", "source_kind"])
    ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
    held = np.array([id_unit(i) < 0.05 for i in ids])
    train_texts = [t for t, h in zip(texts, held) if not h]
    test_texts = [t for t, h in zip(texts, held) if h]
    nbytes = sum(len(t.encode()) for t in texts)
    test_bytes = sum(len(t.encode()) for t in test_texts)
    kinds = {}
    for k, t in zip(table.column("source_kind").to_pylist(), texts):
        kinds[k] = kinds.get(k, 0) + len(t.encode())
    say(f"data: {len(texts)} docs, {nbytes / 1e6:.2f} MB ({', '.join(f'{k} {v / 1e6:.1f}' for k, v in sorted(kinds.items()))}); "
        f"train {len(train_texts)} docs, held-out {len(test_texts)} docs / {test_bytes / 1e6:.2f} MB; "
        f"vocab {args.vocab}, {args.threads} threads, {args.repeat} runs"
        + (f"; the {copies[1] / 1e6:.1f} MB of distinct sample text repeated {copies[0]:.1f}x" if copies[0] > 1 else ""))

    if args.pack_only:
        train_tokenizer(str(work / "curated"), args.vocab, work / "tok", heldout_fraction=0.05, report=False)
        ours_enc = Encoder(work / "tok")
    else:
        ours_enc = _training(args, work, train_texts, test_texts, test_bytes, say)
        if args.train_only:
            return _finish(work, args, lines)

    # ---------------------------------------------------------------- encoding / packing
    if nbytes < 0.95 * args.mb * 1e6:  # the shared text is ~11 MB: larger sizes repeat it (new ids per copy)
        ids, texts, nbytes, copies = _repeat_corpus(work / "curated", args.mb * 1e6)
        say(f"packing data: the {len(ids) // copies} docs above repeated {copies} times with new ids: "
            f"{len(ids)} docs, {nbytes / 1e6:.2f} MB")
    say("\n## encoding / packing (all docs)")

    def our_pack():
        return pack(work / "tok", str(work / "curated"), work / "packed", fmt="ds", val_fraction=0, shard_tokens=10**10,
                    workers=args.threads)

    def datatrove():
        from datatrove.data import Document
        from datatrove.pipeline.tokens import DocumentTokenizer

        out = work / "dt"
        step = DocumentTokenizer(str(out), tokenizer_name_or_path=str(work / "tok" / "tokenizer.json"), eos_token=EOS,
                                 shuffle_documents=False)
        step.run((Document(text=t, id=i) for i, t in zip(ids, texts)), rank=0)
        return out / "00000_unshuffled.ds"

    # encoders alone on the in-memory texts, 1,000 documents per call (their token lists are dropped: at 100 MB
    # a single call would hold GBs of Python ints / HF Encodings)
    chunks = [texts[k:k + 1000] for k in range(0, len(texts), 1000)]
    hf_ref, tt = ours_enc.hf, ours_enc.tt

    def hf_alone():
        for c in chunks:
            hf_ref.encode_batch(c, add_special_tokens=False)

    def encoder_alone():
        for c in chunks:
            ours_enc.encode_batch(c, num_threads=args.threads)

    def tiktoken_numpy():  # the call pack makes, in a thread pool like pack's
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(args.threads) as ex:
            for _ in ex.map(lambda t: tt.encode_to_numpy(t, disallowed_special=()), texts, chunksize=16):
                pass

    contenders = {"pack": our_pack, "datatrove": datatrove, "hf": hf_alone, "encoder": encoder_alone, "numpy": tiktoken_numpy}
    if nbytes > 20e6:  # HF alone is context only, and slower than datatrove: not run on large inputs
        del contenders["hf"]
    runs: dict = {k: [] for k in contenders}
    load0 = os.getloadavg()[0]
    for _ in range(args.repeat):  # interleaved, so load bursts hit all alike
        for k, fn in contenders.items():
            out, wall, cpu = timed(fn, 1)
            runs[k].append((wall, cpu, out))
    med = {k: sorted(v, key=lambda x: x[0])[(len(v) - 1) // 2] for k, v in runs.items()}
    m = med["pack"][2]
    total_tokens = m["total_tokens"]
    ours_file = work / "packed" / "train" / m["splits"]["train"]["shards"][0]["file"]
    identical = ours_file.read_bytes() == med["datatrove"][2].read_bytes()
    say(f"{'':<50}{'wall s':>8}{'best':>7}{'cpu s':>8}{'tokens/s':>12}{'MB/s':>7}")
    for k, label in (
        ("pack", f"ours: pack .ds end to end ({args.threads} threads)"),
        ("datatrove", "datatrove DocumentTokenizer (.ds)"),
        ("hf", f"HF encode_batch ({args.threads} threads)"),
        ("encoder", f"our Encoder alone (tiktoken lists, {args.threads} threads)"),
        ("numpy", f"tiktoken encode_to_numpy alone ({args.threads} threads)"),
    ):
        if k not in med:
            continue
        wall, cpu, _ = med[k]
        best = min(x[0] for x in runs[k])
        say(f"{label:<50}{wall:>8.2f}{best:>7.2f}{cpu:>8.2f}{total_tokens / wall:>12,.0f}{nbytes / 1e6 / wall:>7.2f}")
    pw = med["pack"][0]
    say(f"load average {load0:.2f} -> {os.getloadavg()[0]:.2f}; wall = median of {args.repeat} interleaved runs")
    say(f"pack / encoder alone = {med['encoder'][0] / pw:.2f}x tokens/s (target >= 0.7x); "
        f"pack / tiktoken encode_to_numpy alone = {med['numpy'][0] / pw:.2f}x")
    say(f"pack / datatrove = {med['datatrove'][0] / pw:.2f}x tokens/s (target >= 3x); pack / HF encode_batch = {med['hf'][0] / pw if 'hf' in med else float('nan'):.2f}x; "
        f"ids identical: our .ds == datatrove .ds bytes: {identical}; encoder {m['encoder']}")
    say("(cpu s = this process, all its threads)")

    return _finish(work, args, lines)


def _repeat_corpus(curated: Path, target_bytes: float):
    """Copy the curated sample files until they hold ``target_bytes`` of text (ids get ``~k``); return
    (ids, texts, bytes, copies) of all of it."""
    import math

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = sorted(curated.glob("*.parquet"))
    base = pq.read_table(files, columns=["text"])
    size = sum(len(t.encode()) for t in base.column("text").to_pylist())
    copies = max(1, math.ceil(target_bytes / size))
    for k in range(1, copies):
        for f in files:
            t = pq.read_table(f)
            t = t.set_column(t.schema.get_field_index("id"), "id", pc.binary_join_element_wise(t.column("id"), f"~{k}", ""))
            pq.write_table(t, curated / f"{f.stem}-copy{k:03d}.parquet", row_group_size=256)
    table = pq.read_table(sorted(curated.glob("*.parquet")), columns=["id", "text"])
    ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
    return ids, texts, sum(len(t.encode()) for t in texts), copies


def _sample_corpus(shared_data, out, max_bytes):
    """The sample corpus; when the shared data has less distinct text than max_bytes, whole copies of it
    (same ids: the same documents are held out in every copy) up to max_bytes. (copies, distinct bytes)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from corpusmill.tokenizer.sample_corpus import write_sample_corpus

    paths = write_sample_corpus(shared_data, out, max_bytes=max_bytes, files=4)
    tables = [pq.read_table(p) for p in paths]
    distinct = sum(pc.sum(pc.binary_length(t.column("text"))).as_py() for t in tables)
    total, k = distinct, 1
    while total < 0.98 * max_bytes:
        for i, t in enumerate(tables):
            n = pc.cumulative_sum(pc.binary_length(t.column("text"))).to_numpy()
            rows = int((n <= max_bytes - total).sum())
            if rows:
                pq.write_table(t.slice(0, rows), out / f"sample-copy{k:02d}-{i:03d}.parquet", row_group_size=256)
                total += int(n[rows - 1])
        k += 1
    return total / distinct, distinct


def _training(args, work, train_texts, test_texts, test_bytes, say):
    from corpusmill.tokenizer.bpe import EOS, new_tokenizer, new_trainer
    from corpusmill.tokenizer.fast_encode import Encoder
    from corpusmill.tokenizer.train import train_tokenizer
    try:
        import sentencepiece as spm
    except ImportError:
        spm = None

    # ---------------------------------------------------------------- training
    say("\n## training")

    from corpusmill.tokenizer.train import default_backend, merge_kernel

    t0 = time.perf_counter()
    merge_kernel()  # import numba and load (or compile) the merge loop: once per process
    say(f"numba merge loop loaded in {time.perf_counter() - t0:.2f}s (once per process, before the timed runs); "
        f"default backend: {default_backend()}")

    def ours():
        return train_tokenizer(str(work / "curated"), args.vocab, work / "tok", heldout_fraction=0.05, report=False)

    def ours_rustbpe():
        return train_tokenizer(str(work / "curated"), args.vocab, work / "tok_rb", heldout_fraction=0.05, report=False,
                               backend="rustbpe")

    def raw_hf(vocab=args.vocab):
        tok = new_tokenizer()
        tok.train_from_iterator(train_texts, trainer=new_trainer(vocab, [EOS]))
        return tok

    spm_input = work / "spm.txt"
    spm_input.write_text("\n".join(train_texts), encoding="utf-8")
    longest = max(len(x.encode()) for t in train_texts for x in t.split("\n"))

    def sentencepiece():
        spm.SentencePieceTrainer.train(
            input=str(spm_input), model_prefix=str(work / "spm"), vocab_size=args.vocab, model_type="bpe",
            num_threads=args.threads, byte_fallback=True, normalization_rule_name="identity",
            character_coverage=0.9995, max_sentence_length=longest + 1, minloglevel=2, user_defined_symbols=[],
        )
        return spm.SentencePieceProcessor(model_file=str(work / "spm.model"))

    def ours_hf():
        return train_tokenizer(str(work / "curated"), args.vocab, work / "tok_hf", heldout_fraction=0.05, report=False,
                               backend="hf")

    try:
        import bpeasy  # not a dependency: measured when installed (pip install bpeasy)
    except ImportError:
        bpeasy = None
    from corpusmill.tokenizer.bpe import SPLIT_PATTERN

    def bpeasy_train():
        return bpeasy.train_bpe(iter(train_texts), SPLIT_PATTERN, 128, args.vocab - 1)

    # interleave them so a burst of load on the shared machine hits all of them alike
    skip = set(filter(None, args.skip.split(",")))
    contenders = (("raw", raw_hf), ("ours", ours), ("ours_rustbpe", ours_rustbpe), ("ours_hf", ours_hf)) \
        + ((("spm", sentencepiece),) if spm else ()) + ((("bpeasy", bpeasy_train),) if bpeasy else ())
    contenders = tuple((k, f) for k, f in contenders if k not in skip)
    results = {name: [] for name, _ in contenders}
    load0 = os.getloadavg()[0]
    for _ in range(args.repeat):
        for name, fn in contenders:
            out, wall, cpu = timed(fn, 1)
            results[name].append((wall, cpu, out))
    best = {k: sorted(v, key=lambda x: x[0])[(len(v) - 1) // 2] for k, v in results.items()}  # median run
    ours_enc = Encoder(work / "tok")

    def bpt_hf(tok):
        return test_bytes / sum(len(e.ids) for e in tok.encode_batch(test_texts, add_special_tokens=False))

    def bpt_dir(d):
        return test_bytes / sum(map(len, Encoder(work / d).encode_batch(test_texts, num_threads=args.threads)))

    bpt = {"ours": bpt_dir("tok")}
    if "raw" in best:
        bpt["raw"] = bpt_hf(best["raw"][2])
    for name, d in (("ours_rustbpe", "tok_rb"), ("ours_hf", "tok_hf")):
        if name in best:
            bpt[name] = bpt_dir(d)
    if bpeasy:
        import tiktoken

        bp = tiktoken.Encoding("bpeasy", pat_str=SPLIT_PATTERN, mergeable_ranks=best["bpeasy"][2], special_tokens={})
        bpt["bpeasy"] = test_bytes / sum(len(bp.encode_ordinary(t)) for t in test_texts)
    if spm:
        bpt["spm"] = test_bytes / sum(len(x) for x in best["spm"][2].encode(test_texts))
    ref = "spm" if "spm" in best else "ours"
    say(f"{'':<36}{'wall s':>8}{'cpu s':>8}{'/ ' + ref + ' wall':>12}{'/ cpu':>7}{'bytes/token':>13}")
    for name, label in (("ours", "ours (Parquet -> chunks -> numba)"), ("ours_rustbpe", "ours, backend=rustbpe"),
                        ("ours_hf", "ours, backend=hf"), ("raw", "raw HF tokenizers, same strings"),
                        ("bpeasy", "bpeasy, same strings"), ("spm", "sentencepiece BPE")):
        if name not in best:
            say(f"{label:<36}  ({'skipped' if name in skip else 'not installed'})")
            continue
        wall, cpu, _ = best[name]
        say(f"{label:<36}{wall:>8.2f}{cpu:>8.2f}{wall / best[ref][0]:>11.2f}x{cpu / best[ref][1]:>6.2f}x{bpt[name]:>13.3f}")
    say(f"load average (1 min) {load0:.2f} before, {os.getloadavg()[0]:.2f} after; times are medians of {args.repeat} interleaved runs")
    if "spm" in best:
        say(f"ours / sentencepiece = {best['ours'][0] / best['spm'][0]:.2f} wall, {best['ours'][1] / best['spm'][1]:.2f} CPU (target <= 1.0)")
    if "raw" in best:
        say(f"ours / raw HF = {best['ours'][0] / best['raw'][0]:.3f} wall; bytes/token ours - HF = {bpt['ours'] - bpt['raw']:+.4f}")

    # profile: where HF's time goes
    if args.train_only or "raw" not in best:
        return ours_enc
    _, count_wall, count_cpu = timed(lambda: raw_hf(vocab=257), args.repeat)  # no merges: read + pre-tokenise + count + init pairs
    pre = new_tokenizer().pre_tokenizer
    _, pre_wall, _ = timed(lambda: sum(len(pre.pre_tokenize_str(t)) for t in train_texts), 1)
    raw_wall, raw_cpu = best["raw"][0], best["raw"][1]
    say(f"HF profile (cpu s, all threads): read+pre-tokenise+count+pair init (vocab 257, no merges) {count_cpu:.2f}; "
        f"merges = full - that = {raw_cpu - count_cpu:.2f}; full {raw_cpu:.2f}"
        + (f"; sentencepiece full {best['spm'][1]:.2f}" if spm else ""))
    say(f"  wall: count phase {count_wall:.2f}s, full {raw_wall:.2f}s; HF pre_tokenize_str alone (1 thread, from Python) {pre_wall:.2f}s")

    return ours_enc


def _finish(work, args, lines) -> int:
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    if args.write_results:
        cmd = "HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_tokenizer.py " + " ".join(a for a in sys.argv[1:] if not a.startswith("--write-results") and a != args.write_results)
        Path(args.write_results).write_text(
            "## Tokenizer training and packing (benchmarks/bench_tokenizer.py)\n\n"
            f"Command: `{cmd.strip()}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, machine shared with other jobs)\n\n"
            "```\n" + "\n".join(lines) + "\n```\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
