"""datatrove PipelineSteps around corpusmill's engine-agnostic pieces.

- :class:`ShardReaderStep` reads this task's share of the shards with our readers (round-robin by
  rank), skipping shards whose manifest already exists for the same recipe (resume), and reports
  progress;
- :class:`StageStep` runs one curation stage (a Filter or a Transform) on every document (in batches of
  the stage's ``batch_size``, never across a shard end; a ``per_shard`` filter decides each shard whole at
  its shard-end event);
- :class:`SinkStep` writes Parquet and the per-shard manifest through :class:`ShardSink`.

Each is an ordinary datatrove step: put datatrove's own steps between them if you like (they see
rejected documents too; ours skip them).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpusmill.curation.accounting import ShardSink, shard_done
from corpusmill.curation.document import EVENT, SHARD_END, STAGE, STATUS, is_alive
from corpusmill.curation.registry import build_stage
from corpusmill.curation.stage import apply_stage, apply_stage_batch, apply_stage_per_shard
from corpusmill.pipelines.inputs import Shard
from corpusmill.pipelines.progress import Progress
from corpusmill.pipelines.shard_reading import read_shard

log = logging.getLogger("corpusmill")


class _ToLoguru(logging.Handler):
    """Forward corpusmill's log records to datatrove's loguru logger (console + per-task log files)."""

    def emit(self, record: logging.LogRecord) -> None:
        from loguru import logger

        logger.opt(depth=6, exception=record.exc_info).log(record.levelname, record.getMessage())


def route_logs_to_loguru() -> None:
    if not any(isinstance(h, _ToLoguru) for h in log.handlers):
        log.addHandler(_ToLoguru())
        log.setLevel(logging.INFO)
        log.propagate = False


class ShardReaderStep(PipelineStep):
    name = "corpusmill reader"
    type = "📖 - READER"

    def __init__(self, shards: list[Shard], output_dir: str, recipe_hash: str, skip_done: bool = True) -> None:
        super().__init__()
        self.shards = shards
        self.output_dir = output_dir
        self.recipe_hash = recipe_hash
        self.skip_done = skip_done

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        route_logs_to_loguru()
        if data:
            yield from data
        mine = self.shards[rank::world_size]
        todo = [s for s in mine if not (self.skip_done and shard_done(self.output_dir, s.source_file, self.recipe_hash))]
        if len(todo) < len(mine):
            log.info("task %d: %d of its %d shards already done (manifest present), skipping them", rank, len(mine) - len(todo), len(mine))
        sizes = [s.size for s in todo]
        progress = Progress(f"task {rank}", sum(sizes) if all(x is not None for x in sizes) else None, len(todo),
                            heartbeat_dir=f"{self.output_dir}/logs/progress")
        for shard in todo:
            for doc in read_shard(shard, progress):
                if is_alive(doc):
                    self.stat_update("documents")
                elif STATUS in doc.metadata:
                    self.stat_update(f"read_{doc.metadata[STATUS]}")
                yield doc


class StageStep(PipelineStep):
    """One curation stage (see :mod:`corpusmill.curation.registry`) as a datatrove step."""

    type = "🔻 - STAGE"

    def __init__(self, stage: str, params: dict[str, Any] | None = None) -> None:
        self.name = stage  # before super().__init__(), which names the step's stats after it
        super().__init__()
        self.stage_name = stage
        self.params = dict(params or {})
        self._stage = None

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if self._stage is None:
            self._stage = build_stage(self.stage_name, self.params)
            self._stage.setup()
        stage = self._stage
        seconds: dict[str, float] = {}
        if getattr(stage, "per_shard", False):
            yield from self._run_per_shard(stage, data, seconds)
            return
        if getattr(stage, "batch_size", 1) > 1:
            yield from self._run_batched(stage, data, seconds)
            return
        for doc in data:
            md = doc.metadata
            if md.get(EVENT) == SHARD_END:
                sf = md["source_file"]
                md.setdefault("stage_seconds", {})[self.stage_name] = seconds.pop(sf, 0.0)
                yield doc
                continue
            if is_alive(doc):
                t0 = time.perf_counter()
                with self.track_time():
                    apply_stage(stage, doc)
                seconds[md["source_file"]] = seconds.get(md["source_file"], 0.0) + time.perf_counter() - t0
                self.stat_update("dropped" if STATUS in md else "kept")
            yield doc

    def _run_batched(self, stage, data: DocumentsPipeline, seconds: dict[str, float]) -> DocumentsPipeline:
        """Documents in stream order, ``stage.batch_size`` live ones per call; a shard end flushes first."""
        buf: list = []
        alive: list = []

        def flush():
            if alive:
                t0 = time.perf_counter()
                with self.track_time(unit="batch"):
                    apply_stage_batch(stage, alive)
                share = (time.perf_counter() - t0) / len(alive)
                for d in alive:
                    sf = d.metadata["source_file"]
                    seconds[sf] = seconds.get(sf, 0.0) + share
                    self.stat_update("dropped" if STATUS in d.metadata else "kept")
            out = list(buf)
            buf.clear()
            alive.clear()
            return out

        for doc in data:
            md = doc.metadata
            if md.get(EVENT) == SHARD_END:
                yield from flush()
                md.setdefault("stage_seconds", {})[self.stage_name] = seconds.pop(md["source_file"], 0.0)
                yield doc
                continue
            buf.append(doc)
            if is_alive(doc):
                alive.append(doc)
                if len(alive) >= stage.batch_size:
                    yield from flush()
        yield from flush()


    def _run_per_shard(self, stage, data: DocumentsPipeline, seconds: dict[str, float]) -> DocumentsPipeline:
        """A shard's documents wait from the first one the stage judges to the shard's end, then are decided
        together (:func:`~corpusmill.curation.stage.apply_stage_per_shard`, as on Beam)."""
        for doc in apply_stage_per_shard(stage, data, seconds):
            md = doc.metadata
            if md.get(EVENT) == SHARD_END:
                md.setdefault("stage_seconds", {})[self.stage_name] = seconds.pop(md["source_file"], 0.0)
            elif md.get(STAGE) == stage.name and STATUS in md:
                self.stat_update("dropped")
            elif is_alive(doc):
                self.stat_update("kept")
            yield doc


class SinkStep(PipelineStep):
    name = "corpusmill sink"
    type = "💽 - WRITER"

    def __init__(self, output_dir: str, engine: str = "datatrove", recipe_hash: str = "", **sink_options: Any) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.engine = engine
        self.recipe_hash = recipe_hash
        self.sink_options = sink_options

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        sink = ShardSink(self.output_dir, engine=self.engine, recipe_hash=self.recipe_hash, **self.sink_options)
        for doc in data:
            with self.track_time():
                row = sink.consume(doc)
            if row is not None:
                self.stat_update("shards")
                self.stat_update("kept", value=row["kept"])
                self.stat_update("dropped", value=row["dropped"])
                self.stat_update("errored", value=row["errored"])
                log.info(
                    "shard done: %s read=%d kept=%d dropped=%d errored=%d",
                    row["shard"], row["read"], row["kept"], row["dropped"], row["errored"],
                )
            elif STATUS not in doc.metadata and EVENT not in doc.metadata:
                yield doc
        sink.close()
