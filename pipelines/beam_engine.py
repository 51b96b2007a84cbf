"""Run a recipe on Apache Beam: locally (FnApiRunner, optionally multi-processing) or on Dataflow.

No stage is implemented twice: the DoFns below wrap the very objects the datatrove engine runs
(readers from :mod:`corpusmill.curation.readers`, stages from :mod:`corpusmill.curation.registry`, the sink from
:mod:`corpusmill.curation.accounting`), so both engines produce the same ids, texts, signals and manifests.

Graph: ``Create(shards) -> Reshuffle -> ReadShard -> Stage:<name>... [-> Dedup:* (corpusmill.pipelines.beam_dedup)]
-> key by shard -> GroupByKey -> WriteShard``. Grouping by shard lets one worker write a shard's Parquet files and manifest; the
records of one shard must therefore fit in a worker's memory (a raw shard of a few GB is fine on a
Dataflow worker; split larger inputs). A ``per_shard`` filter (top X % of each shard) is preceded by the
same grouping, so it sees each shard whole wherever it sits in the recipe (after dedup too).

Local runs use ``FnApiRunner``: Beam's ``DirectRunner`` first tries to download the Prism runner
binary, which fails (or hangs) offline. ``--direct_running_mode=multi_processing
--direct_num_workers=2`` runs bundles in separate processes, which catches the pickling and
worker-state problems a real cluster would hit.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from corpusmill.curation.accounting import ShardSink, shard_done
from corpusmill.curation.document import EVENT, REASON, SHARD_END, STAGE, STATUS, is_alive
from corpusmill.curation.registry import DEDUP_STAGES, build_stage, stage_class
from corpusmill.curation.stage import Filter, apply_stage, apply_stage_batch, apply_stage_per_shard
from corpusmill.pipelines.inputs import Shard, list_shards
from corpusmill.pipelines.recipe import Recipe, RecipeError
from corpusmill.pipelines.shard_reading import read_shard

log = logging.getLogger("corpusmill")
NS = "corpusmill"


class ReadShardDoFn(beam.DoFn):
    def __init__(self, output_dir: str, recipe_hash: str, skip_done: bool = True) -> None:
        self.output_dir = output_dir
        self.recipe_hash = recipe_hash
        self.skip_done = skip_done

    def process(self, shard: Shard) -> Iterable:
        if self.skip_done and shard_done(self.output_dir, shard.source_file, self.recipe_hash):
            Metrics.counter(NS, "shards_skipped").inc()
            return
        for doc in read_shard(shard):
            if EVENT not in doc.metadata:
                Metrics.counter(NS, "read").inc()
            yield doc


class StageDoFn(beam.DoFn):
    """One stage; a stage with ``batch_size > 1`` gets its documents in batches within a bundle (flushed at
    a shard end and at the bundle's end), as the datatrove step does."""

    def __init__(self, stage: str, params: dict[str, Any]) -> None:
        self.stage_name = stage
        self.params = params
        self._stage = None
        self._seconds: dict[str, float] = {}
        self._buf: list = []

    def setup(self) -> None:
        self._stage = build_stage(self.stage_name, self.params)
        self._stage.setup()

    def start_bundle(self) -> None:
        self._buf = []

    def _count(self, doc) -> None:
        md = doc.metadata
        if STATUS in md:
            Metrics.counter(NS, f"{md[STATUS]}:{md[STAGE]}:{md[REASON]}").inc()

    def _flush(self) -> list:
        docs, self._buf = self._buf, []
        if docs:
            t0 = time.perf_counter()
            apply_stage_batch(self._stage, docs)
            share = (time.perf_counter() - t0) / len(docs)
            for d in docs:
                sf = d.metadata["source_file"]
                self._seconds[sf] = self._seconds.get(sf, 0.0) + share
                self._count(d)
        return docs

    def process(self, doc) -> Iterable:
        md = doc.metadata
        batched = getattr(self._stage, "batch_size", 1) > 1
        if md.get(EVENT) == SHARD_END:
            if batched:
                yield from self._flush()
            md.setdefault("stage_seconds", {})[self.stage_name] = self._seconds.pop(md["source_file"], 0.0)
        elif is_alive(doc):
            if batched:
                self._buf.append(doc)
                if len(self._buf) >= self._stage.batch_size:
                    yield from self._flush()
                return
            t0 = time.perf_counter()
            apply_stage(self._stage, doc)
            sf = md["source_file"]
            self._seconds[sf] = self._seconds.get(sf, 0.0) + time.perf_counter() - t0
            self._count(doc)
        yield doc

    def finish_bundle(self) -> Iterable:
        from apache_beam.transforms.window import GlobalWindow
        from apache_beam.utils.timestamp import MIN_TIMESTAMP
        from apache_beam.utils.windowed_value import WindowedValue

        for d in self._flush():
            yield WindowedValue(d, MIN_TIMESTAMP, [GlobalWindow()])


class ShardStageDoFn(beam.DoFn):
    """A ``per_shard`` filter on one grouped shard: its records in position order, shard-end event last,
    through :func:`~corpusmill.curation.stage.apply_stage_per_shard` (as the datatrove step does)."""

    def __init__(self, stage: str, params: dict[str, Any]) -> None:
        self.stage_name = stage
        self.params = params
        self._stage = None

    def setup(self) -> None:
        self._stage = build_stage(self.stage_name, self.params)
        self._stage.setup()

    def process(self, item) -> Iterable:
        _, docs = item
        seconds: dict[str, float] = {}
        for doc in apply_stage_per_shard(self._stage, sorted(docs, key=_order), seconds):
            md = doc.metadata
            if md.get(EVENT) == SHARD_END:
                md.setdefault("stage_seconds", {})[self.stage_name] = seconds.pop(md["source_file"], 0.0)
            elif STATUS in md and md.get(STAGE) == self._stage.name:
                Metrics.counter(NS, f"{md[STATUS]}:{md[STAGE]}:{md[REASON]}").inc()
            yield doc


class PerShardStage(beam.PTransform):
    """Group by shard, then :class:`ShardStageDoFn`: one shuffle of the documents that reach the stage."""

    def __init__(self, stage: str, params: dict[str, Any]) -> None:
        super().__init__()
        self.stage_name = stage
        self.params = params

    def expand(self, docs):
        return (
            docs
            | "KeyByShard" >> beam.Map(lambda d: (d.metadata["source_file"], d))
            | "GroupByShard" >> beam.GroupByKey()
            | "Decide" >> beam.ParDo(ShardStageDoFn(self.stage_name, self.params))
        )


def holds_shards(stage: str, params: dict[str, Any]) -> bool:
    """Whether the recipe stage decides whole shards (a filter overriding ``filter_shard`` built with
    ``per_shard`` on; constructors are cheap and do not load models)."""
    cls = stage_class(stage)
    if not (isinstance(cls, type) and issubclass(cls, Filter)) or cls.filter_shard is Filter.filter_shard:
        return False
    return bool(getattr(build_stage(stage, params), "per_shard", False))


def _order(doc) -> tuple:
    """Records by position, the shard-end event last."""
    md = doc.metadata
    return (1, 0) if md.get(EVENT) == SHARD_END else (0, int(md.get("position", 0)))


class WriteShardDoFn(beam.DoFn):
    def __init__(self, output_dir: str, recipe_hash: str, sink_options: dict[str, Any]) -> None:
        self.output_dir = output_dir
        self.recipe_hash = recipe_hash
        self.sink_options = sink_options

    def process(self, item) -> Iterable:
        source_file, docs = item
        sink = ShardSink(self.output_dir, engine="beam", recipe_hash=self.recipe_hash, **self.sink_options)
        row = None
        for doc in sorted(docs, key=_order):
            md = doc.metadata
            if md.get(EVENT) != SHARD_END and STATUS in md and md.get(STAGE) == "read":
                Metrics.counter(NS, f"{md[STATUS]}:read:{md[REASON]}").inc()
            row = sink.consume(doc) or row
        sink.close()
        if row is not None:
            Metrics.counter(NS, "kept").inc(row["kept"])
            Metrics.counter(NS, "dropped").inc(row["dropped"])
            Metrics.counter(NS, "errored").inc(row["errored"])
            Metrics.counter(NS, "shards").inc()
            yield {k: row[k] for k in ("shard", "read", "kept", "dropped", "errored")}


def build_beam_pipeline(p: beam.Pipeline, recipe: Recipe, shards: list[Shard], output_dir: str | None = None):
    """Add the recipe's transforms to ``p``; returns the PCollection of manifest summaries."""
    out = (output_dir or recipe.output_dir).rstrip("/")
    h = recipe.hash()
    docs = (
        p
        | "Shards" >> beam.Create(shards)
        | "SpreadShards" >> beam.Reshuffle()
        # with dedup, every shard must be read again on a rerun: a finished shard's documents still have to
        # be compared with the others (outputs are deterministic and replaced atomically)
        | "ReadShard" >> beam.ParDo(ReadShardDoFn(out, h, skip_done=not any(s.stage in DEDUP_STAGES for s in recipe.stages)))
    )
    dedup_done = False
    for i, spec in enumerate(recipe.stages):
        if spec.stage in DEDUP_STAGES:
            if not dedup_done:  # exact and MinHash dedup share one set of transforms
                from corpusmill.pipelines.beam_dedup import add_dedup
                from corpusmill.pipelines.dedup_phases import split_stages

                docs = add_dedup(docs, split_stages(recipe)[1])
                dedup_done = True
            continue
        if holds_shards(spec.stage, spec.params):
            docs = docs | f"Stage{i:02d}:{spec.stage}" >> PerShardStage(spec.stage, spec.params)
        else:
            docs = docs | f"Stage{i:02d}:{spec.stage}" >> beam.ParDo(StageDoFn(spec.stage, spec.params))
    sink_options = dict(
        compression=recipe.compression, row_group_size=recipe.row_group_size, dropped_text_chars=recipe.dropped_text_chars
    )
    return (
        docs
        | "KeyByShard" >> beam.Map(lambda d: (d.metadata["source_file"], d))
        | "GroupByShard" >> beam.GroupByKey()
        | "WriteShard" >> beam.ParDo(WriteShardDoFn(out, h, sink_options))
    )


def pipeline_options(recipe: Recipe, beam_args: list[str]) -> PipelineOptions:
    args = list(recipe.beam.get("args", [])) + list(beam_args or [])
    opts = PipelineOptions(args)
    std = opts.view_as(StandardOptions)
    if std.runner is None or std.runner in ("DirectRunner", "direct"):
        # offline-safe local runner; multi-processing with the recipe's worker count
        std.runner = "FnApiRunner"
        from apache_beam.options.pipeline_options import DirectOptions

        d = opts.view_as(DirectOptions)
        if not any(a.startswith("--direct_running_mode") for a in args) and recipe.workers > 1:
            d.direct_running_mode = "multi_processing"
            d.direct_num_workers = recipe.workers
    return opts


def run_recipe_beam(recipe: Recipe, beam_args: list[str] | None = None, *, overwrite: bool = False) -> dict[str, Any]:
    from corpusmill.pipelines.run_dir import check_output_dir
    from corpusmill.pipelines.summary import finish_run

    t0 = time.time()
    shards = list_shards(recipe)
    opts = pipeline_options(recipe, beam_args or [])
    runner = opts.view_as(StandardOptions).runner
    dry_run = any(a.startswith("--dry_run") for a in (beam_args or []))
    if not dry_run:
        check_output_dir(recipe, overwrite)
    out = recipe.output_dir.rstrip("/")
    log.info("recipe %s on Beam (%s): %d shards -> %s", recipe.name, runner, len(shards), out)

    if runner in ("DataflowRunner", "dataflow"):
        from dataclasses import replace

        from apache_beam.options.pipeline_options import GoogleCloudOptions

        from corpusmill.pipelines.beam_assets import stage_assets

        temp = opts.view_as(GoogleCloudOptions).temp_location
        if not temp:
            raise RecipeError("Dataflow needs --temp_location=gs://BUCKET/tmp (model files are staged there)")
        recipe = replace(recipe, stages=stage_assets(recipe.stages, temp, dry_run=dry_run))
    p = beam.Pipeline(options=opts)
    build_beam_pipeline(p, recipe, shards)
    result = p.run()
    result.wait_until_finish()
    if dry_run:
        return {"engine": f"beam-{runner}", "dry_run": True, "result": result, "stages": recipe.stages}
    return finish_run(recipe, shards, f"beam-{runner}", t0)
