"""``corpusmill`` subcommands: train-tokenizer, tokenizer-report, tokenizer-sweep, pack.

Examples::

    corpusmill train-tokenizer --input 'run/curated/*.parquet' --vocab-size 32768 --out tok/ \\
        --weight source_kind=book:0.5 --special-token '<|pad|>' --heldout-fraction 0.01
    corpusmill tokenizer-report --tokenizer tok/ --input 'run/curated/*.parquet'
    corpusmill tokenizer-sweep --input 'run/curated/*.parquet' --vocab-sizes 8192,16384,32768,65536
    corpusmill pack --tokenizer tok/ --input 'run/curated/*.parquet' --out tokens/ --format ds \\
        --seq-len 1024 --shard-tokens 100000000 --val-fraction 0.01 --shuffle --seed 1 --workers 2
    corpusmill pack --verify tokens/
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from corpusmill.preflight import UsageError, need_dir, need_matches, need_parquet_column, need_tokenizer


def _offline() -> None:
    """Never let a tokenizer load reach for the hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _int(s: str) -> int:
    """Integers with optional k/M/G suffix or underscores: 32k, 100M, 1_000_000."""
    s = s.strip().replace("_", "")
    mult = {"k": 10**3, "K": 10**3, "m": 10**6, "M": 10**6, "g": 10**9, "G": 10**9}.get(s[-1:], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def _sizes(s: str) -> list[int]:
    return [_int(x) for x in s.split(",") if x.strip()]


def cmd_train(args) -> int:
    _offline()
    need_parquet_column(need_matches(args.input, "--input"))
    from corpusmill.tokenizer.report import format_report
    from corpusmill.tokenizer.train import merge_kernel, train_tokenizer

    # checked before any document is read (the learners would only refuse after counting)
    if args.backend == "ours" and merge_kernel() is None:
        raise UsageError("--backend ours needs numba's compiled merge loop (unset CORPUSMILL_JIT=0, or use --backend rustbpe)")
    if args.backend == "rustbpe" and args.min_frequency > 1:
        raise UsageError("--min-frequency needs --backend ours or hf (rustbpe has no such option)")

    meta = train_tokenizer(
        args.input, args.vocab_size, args.out, special_tokens=args.special_token, weights=args.weight,
        heldout_fraction=args.heldout_fraction, max_bytes=args.max_bytes, min_frequency=args.min_frequency,
        progress=not args.no_progress, backend=args.backend,
    )
    t = meta["inputs"]["totals"]
    print(f"vocab {meta['vocab_size']} trained on {t['copies_trained']:,} docs / {t['bytes_trained']:,} bytes "
          f"({t['rows_heldout']:,} held out) in {meta['training_seconds']:.1f}s -> {args.out}")
    rep_path = Path(args.out) / "report.json"
    if rep_path.exists():
        print(format_report(json.loads(rep_path.read_text())))
    return 0


def cmd_report(args) -> int:
    _offline()
    need_tokenizer(args.tokenizer)
    need_parquet_column(need_matches(args.input, "--input"))
    from corpusmill.tokenizer.report import format_report, vocab_report

    rep = vocab_report(args.tokenizer, args.input, heldout_fraction=args.heldout_fraction, max_bytes=args.max_bytes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=2)
    print(format_report(rep, top=args.top))
    return 0


def cmd_sweep(args) -> int:
    _offline()
    need_matches(args.input, "--input")
    from corpusmill.tokenizer.sweep import sweep

    rows, table = sweep(args.input, args.vocab_sizes, out=args.out, heldout_fraction=args.heldout_fraction,
                        max_bytes=args.max_bytes, weights=args.weight, special_tokens=args.special_token)
    print(table)
    return 0


def cmd_pack(args) -> int:
    _offline()
    from corpusmill.tokenizer.pack import pack, verify

    if args.verify:
        need_dir(args.verify, "--verify", "give a pack directory (written by `corpusmill pack --out DIR`)")
        res = verify(args.verify, samples=args.samples, check_text=not args.no_text_check)
        c = res["checked"]
        print(f"{'OK' if res['ok'] else 'FAILED'}: {res['format']} pack, {c['shards']} shards, {c['tokens']:,} tokens, "
              f"{c['documents']:,} documents, {c['sampled']} sampled documents re-encoded with HF and decoded")
        for e in res["errors"]:
            print("  error:", e)
        return 0 if res["ok"] else 1
    missing = [n for n in ("tokenizer", "input", "out") if not getattr(args, n)]
    if missing:
        raise UsageError(f"--{', --'.join(missing)} required (or --verify OUT)")
    need_parquet_column(need_matches(args.input, "--input"))
    need_tokenizer(args.tokenizer)
    m = pack(args.tokenizer, args.input, args.out, fmt=args.format, seq_len=args.seq_len, shard_tokens=args.shard_tokens,
             val_fraction=args.val_fraction, shuffle=args.shuffle, seed=args.seed, workers=args.workers,
             encoder=args.encoder, progress=not args.no_progress)
    st = m["stats"]
    for s, i in m["splits"].items():
        print(f"{s}: {i['num_documents']:,} docs, {i['num_tokens']:,} tokens in {len(i['shards'])} shard(s)")
    print(f"{m['format']} ({m['dtype']}, encoder {m['encoder']}) -> {args.out}: {m['total_tokens']:,} tokens in "
          f"{st['seconds']:.1f}s ({st['tokens_per_second']:,} tokens/s, {st['mb_per_second']:.2f} MB/s)")
    return 0


def add_subcommands(subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter

    p = subparsers.add_parser("train-tokenizer", help="train a byte-level BPE vocabulary on curated Parquet", formatter_class=fmt,
                              description="Train a GPT-4-style byte-level BPE (HF tokenizers) streaming the text column of curated Parquet.")
    p.add_argument("--input", nargs="+", required=True, help="Parquet globs / directories")
    p.add_argument("--vocab-size", type=_int, required=True, help="e.g. 32768 or 32k")
    p.add_argument("--out", required=True, help="output directory (tokenizer.json, corpusmill_tokenizer.json, report.json)")
    p.add_argument("--special-token", action="append", default=[], help="extra special token (repeatable); <|endoftext|> is always id 0")
    p.add_argument("--weight", action="append", default=[], help="sampling weight COLUMN=VALUE:W, column source_kind or language (repeatable)")
    p.add_argument("--heldout-fraction", type=float, default=0.01, help="documents left out (by id hash) for the report (default 0.01)")
    p.add_argument("--max-bytes", type=_int, default=None, help="stop feeding after this many text bytes")
    p.add_argument("--min-frequency", type=int, default=0, help="minimum pair count for a merge (ours and hf backends)")
    p.add_argument("--backend", choices=("ours", "rustbpe", "hf"), default=None,
                   help="BPE learner: ours (default: chunk counting + numba merge loop, rustbpe's merges), "
                        "rustbpe, or HF tokenizers' BpeTrainer")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("tokenizer-report", help="bytes/token per language and source_kind, vocabulary utilisation")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory or tokenizer.json")
    p.add_argument("--input", nargs="+", required=True)
    p.add_argument("--heldout-fraction", type=float, default=0.01, help="report on this held-out split (1 = all documents)")
    p.add_argument("--max-bytes", type=_int, default=None)
    p.add_argument("--top", type=int, default=15, help="groups shown per column")
    p.add_argument("--json", help="also write the full report here")
    p.set_defaults(func=cmd_report)

    p = subparsers.add_parser("tokenizer-sweep", help="train several vocabulary sizes and compare them")
    p.add_argument("--input", nargs="+", required=True)
    p.add_argument("--vocab-sizes", type=_sizes, default=[4096, 8192, 16384, 32768], help="comma list (default 4k,8k,16k,32k)")
    p.add_argument("--out", help="keep the tokenizers under OUT/v{N} and sweep.json")
    p.add_argument("--heldout-fraction", type=float, default=0.01)
    p.add_argument("--max-bytes", type=_int, default=None, help="training bytes per size")
    p.add_argument("--weight", action="append", default=[])
    p.add_argument("--special-token", action="append", default=[])
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser("pack", help="encode curated Parquet into token shards (ds / megatron / llmc); --verify a pack", formatter_class=fmt,
                              description="Encode documents (EOS between them) into fixed-size shards with a deterministic train/val split.")
    p.add_argument("--tokenizer", help="tokenizer directory (train-tokenizer --out)")
    p.add_argument("--input", nargs="+", help="Parquet globs / directories")
    p.add_argument("--out", help="output directory")
    p.add_argument("--format", choices=["ds", "megatron", "llmc"], default="ds", help="ds = datatrove/nanotron (default)")
    p.add_argument("--seq-len", type=_int, help="round shards to whole windows of seq_len+1 tokens")
    p.add_argument("--shard-tokens", type=_int, help="tokens per shard (default 100M)")
    p.add_argument("--val-fraction", type=float, default=0.01, help="documents (by id hash) in the val split (default 0.01)")
    p.add_argument("--shuffle", action="store_true", help="shuffle documents within each split (seeded)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="encoding workers: threads with the tiktoken encoder, processes with HF's (default: CPU count; 1 = in-process)")
    p.add_argument("--encoder", choices=["auto", "tiktoken", "hf"], default="auto",
                   help="auto: tiktoken when it reproduces HF ids on a probe set, else HF")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--verify", metavar="OUT", help="verify an existing pack instead of packing")
    p.add_argument("--samples", type=int, default=200, help="--verify: documents re-encoded and decoded")
    p.add_argument("--no-text-check", action="store_true", help="--verify: skip comparing with the input text")
    p.set_defaults(func=cmd_pack)
