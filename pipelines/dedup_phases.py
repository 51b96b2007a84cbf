"""Recipes with dedup stages on datatrove: the pipeline is split into phases around them.

1. ``curate``     readers -> stages before dedup -> sink into ``RUN/_predup/`` (a complete run of its own:
                  curated, dropped and manifest per shard; resumable like any run);
2. ``signatures`` the kept documents of ``_predup`` -> MinHash band keys and exact keys, sorted runs on disk;
3. ``buckets``    merge the runs band by band -> candidate edges;
4. ``clusters-*`` connected components, one deterministic survivor per cluster (many tasks, rounds until
                  converged: ``datatrove_dedup.cluster_phases``);
5. ``final``      every record of ``_predup`` (kept and dropped alike) -> dedup marker -> stages after
                  dedup -> sink into ``RUN/``, with the accounting carried over from ``_predup``.

Signatures are computed from ``_predup`` rather than inside phase 1 so that a resumed phase 1 (which
skips finished shards) can never leave a shard unsigned.
"""

from __future__ import annotations

import logging

import fsspec
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpusmill.curation.accounting import manifest_path, shard_done, shard_key
from corpusmill.curation.dedup.config import dedup_config
from corpusmill.pipelines.datatrove_dedup import DedupBuckets, DedupMarker, DedupSignatures, cluster_phases
from corpusmill.curation.document import EVENT, SHARD_END
from corpusmill.curation.registry import DEDUP_STAGES
from corpusmill.curation.rows import row_to_document
from corpusmill.pipelines.datatrove_steps import ShardReaderStep, SinkStep, StageStep, route_logs_to_loguru
from corpusmill.pipelines.executors import make_executor
from corpusmill.pipelines.inputs import Shard
from corpusmill.pipelines.recipe import Recipe, RecipeError

log = logging.getLogger("corpusmill")

PREDUP = "_predup"


def split_stages(recipe: Recipe) -> tuple[list, list, list]:
    """(stages before dedup, the dedup stages, stages after dedup); dedup stages must be adjacent."""
    idx = [i for i, s in enumerate(recipe.stages) if s.stage in DEDUP_STAGES]
    if idx != list(range(idx[0], idx[-1] + 1)):
        raise RecipeError("stages: exact_dedup and minhash_dedup must be next to each other")
    return recipe.stages[: idx[0]], recipe.stages[idx[0] : idx[-1] + 1], recipe.stages[idx[-1] + 1 :]


def _read_table(path: str, columns: list[str] | None = None):
    fs, p = fsspec.core.url_to_fs(path)
    with fs.open(p, "rb") as fh:
        return pq.read_table(fh, columns=columns)


def read_predup_shard(predup_dir: str, source_file: str, kept_only: bool = False) -> DocumentsPipeline:
    """The records of one shard as written by phase 1, in position order, then its shard-end event."""
    key = shard_key(source_file)
    kept = _read_table(f"{predup_dir}/curated/{key}.parquet").to_pylist()
    rows = kept
    if not kept_only:
        rows = kept + _read_table(f"{predup_dir}/dropped/{key}.parquet").to_pylist()
        rows.sort(key=lambda r: r["position"])
    for row in rows:
        yield row_to_document(row)
    if kept_only:
        return
    man = _read_table(manifest_path(predup_dir, source_file)).to_pylist()[0]
    yield Document(
        text="",
        id=f"{source_file}#end",
        metadata={
            EVENT: SHARD_END,
            "source_file": source_file,
            "read": man["read"],
            "input_path": man["input_path"],
            "reader": man["reader"],
            "source_kind": man["source_kind"],
            "input_bytes": man["input_bytes"],
            "started_at": man["started_at"].timestamp() if man["started_at"] else None,
            "stage_seconds": dict(man["stage_seconds"] or []),
        },
    )


class PredupReaderStep(PipelineStep):
    """Reads phase 1's output back, shard by shard (round-robin by rank, like the raw reader)."""

    name = "corpusmill pre-dedup reader"
    type = "📖 - READER"

    def __init__(self, shards: list[Shard], predup_dir: str, kept_only: bool, output_dir: str | None = None,
                 recipe_hash: str | None = None) -> None:
        super().__init__()
        self.shards = shards
        self.predup_dir = predup_dir
        self.kept_only = kept_only
        self.output_dir = output_dir
        self.recipe_hash = recipe_hash

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        route_logs_to_loguru()
        if data:
            yield from data
        for shard in self.shards[rank::world_size]:
            if self.output_dir and shard_done(self.output_dir, shard.source_file, self.recipe_hash):
                continue
            for doc in read_predup_shard(self.predup_dir, shard.source_file, self.kept_only):
                self.stat_update("documents")
                yield doc


def build_phases(recipe: Recipe, shards: list[Shard]) -> list[tuple[str, list, int]]:
    """(phase name, datatrove pipeline, tasks) in run order."""
    pre, dedups, post = split_stages(recipe)
    out = recipe.output_dir.rstrip("/")
    predup = f"{out}/{PREDUP}"
    workdir = f"{out}/_dedup"
    config = dedup_config(dedups)
    h = recipe.hash()
    sink_opts = dict(compression=recipe.compression, row_group_size=recipe.row_group_size,
                     dropped_text_chars=recipe.dropped_text_chars)
    curate = [ShardReaderStep(shards, predup, h)] + [StageStep(s.stage, s.params) for s in pre]
    curate.append(SinkStep(predup, engine="datatrove", recipe_hash=h, **sink_opts))
    final = [PredupReaderStep(shards, predup, kept_only=False, output_dir=out, recipe_hash=h), DedupMarker(workdir)]
    final += [StageStep(s.stage, s.params) for s in post]
    final.append(SinkStep(out, engine="datatrove", recipe_hash=h, **sink_opts))
    return [
        ("curate", curate, recipe.tasks),
        ("signatures", [PredupReaderStep(shards, predup, kept_only=True), DedupSignatures(workdir, config)], recipe.tasks),
        ("buckets", [DedupBuckets(workdir)], recipe.tasks),
        *cluster_phases(workdir, recipe.tasks),
        ("final", final, recipe.tasks),
    ]


def run_with_dedup(recipe: Recipe, shards: list[Shard], slurm_dry_run: bool | None = None) -> list:
    from dataclasses import replace


    out = recipe.output_dir.rstrip("/")
    executors = []
    prev = None
    for name, pipeline, tasks in build_phases(recipe, shards):
        if recipe.executor != "slurm" and getattr(pipeline[0], "converged", lambda n: False)(tasks):
            continue  # connected components converged: the remaining rounds have nothing to do
        r = replace(recipe, tasks=tasks, workers=min(recipe.workers, tasks))
        ex = make_executor(r, pipeline, f"{out}/logs/{name}", depends=prev if recipe.executor == "slurm" else None,
                           slurm_dry_run=slurm_dry_run)
        if recipe.executor != "slurm":
            log.info("phase %s (%d tasks)", name, tasks)
            ex.run()
        executors.append(ex)
        prev = ex
    return executors
