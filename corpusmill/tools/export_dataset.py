"""``corpusmill export-dataset RUN OUT``: a curation run as a Hugging Face Hub dataset repository.

Writes the Hub's Parquet layout: ``data/train-00000-of-0000N.parquet`` (kept documents, config
``default``), ``dropped/train-...parquet`` (config ``dropped``) and a ``README.md`` dataset card whose
YAML header declares both configs; the card lists the run's counts and its recipe. ``OUT`` appears
whole (built beside it, then renamed) and is never written over. Load it with
``datasets.load_dataset(OUT)`` or push it with ``huggingface-cli upload``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CONFIGS = (("default", "curated", "data"), ("dropped", "dropped", "dropped"))  # config, run folder, out folder


class ExportError(ValueError):
    pass


def _files(run: Path, sub: str) -> list[Path]:
    return sorted((run / sub).glob("*.parquet"))


def _hub_schema(files: list[Path]) -> pa.Schema:
    """The first file's schema with signals in the current type (1.x runs stored a map)."""
    from corpusmill.schemas import CURATED_SCHEMA, DROPPED_SCHEMA

    schema = pq.read_schema(files[0])
    i = schema.get_field_index("signals")
    if i >= 0 and pa.types.is_map(schema.field(i).type):
        return DROPPED_SCHEMA if "status" in schema.names else CURATED_SCHEMA
    return schema


def _batches(files: list[Path], schema: pa.Schema):
    from corpusmill.curation.rows import _clean_signals, signals_dict

    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=2048):
            if batch.num_rows == 0:
                continue
            if pa.types.is_map(batch.schema.field("signals").type):  # schema 1.x
                rows = batch.to_pylist()
                for r in rows:
                    r["signals"] = _clean_signals(signals_dict(r["signals"]))
                batch = pa.RecordBatch.from_pylist(rows, schema=schema)
            yield batch


def _write_split(files: list[Path], out_dir: Path, max_bytes: int) -> list[tuple[str, int]]:
    """Copy ``files`` into ``out_dir/train-XXXXX-of-NNNNN.parquet`` parts of ~``max_bytes`` of Arrow data."""
    out_dir.mkdir(parents=True)
    if not files:
        return []
    schema = _hub_schema(files)
    parts: list[tuple[Path, int]] = []
    writer, size, rows = None, 0, 0
    for batch in _batches(files, schema):
        if writer is None:
            path = out_dir / f"part-{len(parts):05d}.parquet"
            writer, size, rows = pq.ParquetWriter(path, schema, compression="zstd"), 0, 0
        writer.write_batch(batch)
        size += batch.nbytes
        rows += batch.num_rows
        if size >= max_bytes:
            writer.close()
            parts.append((path, rows))
            writer = None
    if writer is not None:
        writer.close()
        parts.append((path, rows))
    if not parts:  # every file empty: one empty part keeps the config loadable
        path = out_dir / "part-00000.parquet"
        pq.write_table(schema.empty_table(), path, compression="zstd")
        parts.append((path, 0))
    named = []
    for i, (p, n) in enumerate(parts):
        name = f"train-{i:05d}-of-{len(parts):05d}.parquet"
        p.rename(out_dir / name)
        named.append((name, n))
    return named


def _counts(run: Path) -> dict:
    """Totals and per-source / per-reason counts from the run's manifests."""
    man = pa.concat_tables([pq.read_table(f, columns=["source_kind", "read", "kept", "dropped", "errored",
                                                      "dropped_by", "errored_by", "kept_text_bytes"])
                            for f in _files(run, "manifest")]).to_pylist()
    tot = {k: sum(m[k] or 0 for m in man) for k in ("read", "kept", "dropped", "errored", "kept_text_bytes")}
    by_source: dict[str, dict[str, int]] = {}
    reasons: dict[tuple[str, str, str], int] = {}
    for m in man:
        s = by_source.setdefault(m["source_kind"] or "?", {"shards": 0, "read": 0, "kept": 0, "dropped": 0, "errored": 0})
        s["shards"] += 1
        for k in ("read", "kept", "dropped", "errored"):
            s[k] += m[k] or 0
        for status, col in (("dropped", "dropped_by"), ("error", "errored_by")):
            for d in m[col] or []:
                key = (status, d["stage"], d["reason"])
                reasons[key] = reasons.get(key, 0) + d["count"]
    return {"shards": len(man), **tot, "by_source": by_source, "reasons": reasons}


def _size_category(n: int) -> str:
    for lim, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                      (10_000_000, "1M<n<10M")):
        if n < lim:
            return name
    return "n>10M"


def dataset_card(run: Path, counts: dict, splits: dict[str, list[tuple[str, int]]]) -> str:
    from corpusmill.schemas import read_schema_metadata

    info = json.loads((run / "recipe.json").read_text()) if (run / "recipe.json").is_file() else {}
    recipe = info.get("recipe") or {}
    name = recipe.get("name") or run.name
    first = next((run / "curated").glob("*.parquet"), None)
    version = read_schema_metadata(first)[1] if first else None
    y = ["---", "configs:"]
    for config, _, folder in CONFIGS:
        y += [f"- config_name: {config}", "  data_files:", "  - split: train", f"    path: {folder}/train-*.parquet"]
    y += ["task_categories:", "- text-generation", "size_categories:", f"- {_size_category(counts['kept'])}",
          "tags:", "- corpusmill", "---", ""]
    pct = (lambda a: f"{100 * a / counts['read']:.1f} %") if counts["read"] else (lambda a: "-")
    lines = [
        f"# {name}", "",
        f"Curated with [corpusmill](https://pypi.org/project/corpusmill/) recipe `{name}`"
        + (f" (output schema {version})." if version else "."), "",
        "| config | rows | files |", "|---|---:|---:|",
        *(f"| `{c}` | {sum(n for _, n in splits[c]):,} | {len(splits[c])} |" for c, _, _ in CONFIGS), "",
        "`default` holds the kept documents; `dropped` every document a stage removed or could not read, with "
        "`stage` and `reason` (its text truncated). `signals` is a list of `{key: \"<stage>.<signal>\", value}` "
        "entries.", "",
        "## Counts", "",
        f"{counts['shards']} input shards; {counts['read']:,} documents read, {counts['kept']:,} kept "
        f"({pct(counts['kept'])}), {counts['dropped']:,} dropped, {counts['errored']:,} errored; "
        f"{counts['kept_text_bytes'] / 1e6:.1f} MB of kept text (UTF-8).", "",
        "| source_kind | shards | read | kept | dropped | errored |", "|---|---:|---:|---:|---:|---:|",
        *(f"| {k} | {v['shards']} | {v['read']:,} | {v['kept']:,} | {v['dropped']:,} | {v['errored']:,} |"
          for k, v in sorted(counts["by_source"].items())), "",
        "| status | stage | reason | documents | % of read |", "|---|---|---|---:|---:|",
        *(f"| {s} | {st} | {r} | {n:,} | {pct(n)} |"
          for (s, st, r), n in sorted(counts["reasons"].items(), key=lambda kv: -kv[1])), "",
        "## Recipe", "",
        "```json", json.dumps(recipe, indent=2, ensure_ascii=False, default=str), "```", "",
    ]
    return "\n".join(y + lines)


def export_dataset(run: str | os.PathLike, out: str | os.PathLike, max_shard_mb: float = 500) -> dict:
    run, out = Path(run).expanduser().resolve(), Path(out).expanduser().resolve()
    if not _files(run, "manifest"):
        raise ExportError(f"{run}: no manifest/*.parquet: not a finished curation run (run `corpusmill curate` first)")
    if out.exists():
        raise ExportError(f"{out}: already exists; choose a new OUT directory (export-dataset never writes over one)")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        splits = {config: _write_split(_files(run, sub), tmp / folder, int(max_shard_mb * 1e6))
                  for config, sub, folder in CONFIGS}
        counts = _counts(run)
        (tmp / "README.md").write_text(dataset_card(run, counts, splits), encoding="utf-8")
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"out": str(out), "splits": splits, "kept": counts["kept"], "read": counts["read"]}


def cmd_export_dataset(args: argparse.Namespace) -> int:
    try:
        r = export_dataset(args.run, args.out, args.max_shard_mb)
    except ExportError as e:
        print(f"corpusmill export-dataset: {e}", file=sys.stderr)
        return 2
    for config, parts in r["splits"].items():
        print(f"{config:8s} {sum(n for _, n in parts):>9,} rows in {len(parts)} file(s)")
    print(f"dataset  {r['out']}  (datasets.load_dataset({r['out']!r}); README.md is the dataset card)")
    return 0


def add_subcommands(sub) -> None:
    p = sub.add_parser("export-dataset", help="write a run as a Hugging Face Hub dataset (Parquet + README.md card)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("run", metavar="RUN", help="a curation run directory")
    p.add_argument("out", metavar="OUT", help="new directory to create (the dataset repository)")
    p.add_argument("--max-shard-mb", type=float, default=500, help="approximate size of a data file (default 500)")
    p.set_defaults(func=cmd_export_dataset)
