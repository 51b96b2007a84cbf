"""Run a recipe on datatrove: LocalPipelineExecutor, RayPipelineExecutor or SlurmPipelineExecutor.

The recipe's stages become ``ShardReaderStep -> StageStep... -> SinkStep``. Reruns skip finished
tasks (datatrove's completion markers) and, inside a task, finished shards (their manifest exists
for the same recipe hash), so an interrupted run picks up where it stopped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from corpusmill.curation.registry import DEDUP_STAGES
from corpusmill.pipelines.datatrove_steps import ShardReaderStep, SinkStep, StageStep
from corpusmill.pipelines.executors import make_executor
from corpusmill.pipelines.inputs import Shard, list_shards
from corpusmill.pipelines.recipe import Recipe, RecipeError
from corpusmill.pipelines.run_dir import check_output_dir
from corpusmill.pipelines.summary import finish_run

log = logging.getLogger("corpusmill")


def _sink_options(recipe: Recipe) -> dict[str, Any]:
    return dict(
        compression=recipe.compression,
        row_group_size=recipe.row_group_size,
        dropped_text_chars=recipe.dropped_text_chars,
    )


def build_pipeline(recipe: Recipe, shards: list[Shard], output_dir: str | None = None) -> list:
    """The datatrove pipeline for the per-document stages of ``recipe``."""
    out = output_dir or recipe.output_dir
    steps: list = [ShardReaderStep(shards, out, recipe.hash())]
    for spec in recipe.stages:
        if spec.stage in DEDUP_STAGES:
            raise RecipeError("dedup stages are run by run_recipe() as separate phases")
        steps.append(StageStep(spec.stage, spec.params))
    steps.append(SinkStep(out, engine="datatrove", recipe_hash=recipe.hash(), **_sink_options(recipe)))
    return steps


def run_recipe(recipe: Recipe, *, overwrite: bool = False, slurm_dry_run: bool | None = None) -> dict[str, Any]:
    """Run every phase of ``recipe`` and check the accounting. Returns the run summary."""
    t0 = time.time()
    shards = list_shards(recipe)
    log.info("recipe %s: %d shards, %d stages, executor %s (%d tasks, %d workers) -> %s",
             recipe.name, len(shards), len(recipe.stages), recipe.executor, recipe.tasks, recipe.workers, recipe.output_dir)
    check_output_dir(recipe, overwrite)
    out = recipe.output_dir.rstrip("/")

    if any(s.stage in DEDUP_STAGES for s in recipe.stages):
        from corpusmill.pipelines.dedup_phases import run_with_dedup

        executors = run_with_dedup(recipe, shards, slurm_dry_run=slurm_dry_run)
    else:
        ex = make_executor(recipe, build_pipeline(recipe, shards), f"{out}/logs/curate", slurm_dry_run=slurm_dry_run)
        executors = [ex]
        if recipe.executor != "slurm":
            ex.run()
    if recipe.executor == "slurm":
        return {"executor": "slurm", "launch_scripts": [getattr(e, "launch_script_path", None) for e in executors]}

    return finish_run(recipe, shards, f"datatrove-{recipe.executor}", t0)
