"""Run a recipe on datatrove: LocalPipelineExecutor, RayPipelineExecutor or SlurmPipelineExecutor.

The recipe's stages become ``ShardReaderStep -> StageStep... -> SinkStep``. Reruns skip finished
tasks (datatrove's completion markers) and, inside a task, finished shards (their manifest exists
for the same recipe hash), so an interrupted run picks up where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import fsspec

from curation.registry import DEDUP_STAGES
from pipelines.datatrove_steps import ShardReaderStep, SinkStep, StageStep
from pipelines.inputs import Shard, list_shards
from pipelines.recipe import Recipe, RecipeError
from pipelines.summary import finish_run

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


def _check_output_dir(recipe: Recipe, overwrite: bool) -> None:
    fs, d = fsspec.core.url_to_fs(recipe.output_dir)
    marker = f"{d}/recipe.json"
    if fs.exists(d) and overwrite:
        if not fs.exists(marker) and fs.ls(d):  # the recipe names the directory: never delete just anything
            raise RecipeError(f"--overwrite: {recipe.output_dir} is not a corpusmill run directory (no recipe.json) "
                              "and is not empty; refusing to delete it")
        log.info("--overwrite: removing %s", recipe.output_dir)
        fs.rm(d, recursive=True)
    if fs.exists(marker):
        with fs.open(marker) as fh:
            prev = json.load(fh)
        if prev.get("recipe_hash") != recipe.hash():
            raise RecipeError(
                f"{recipe.output_dir} holds a run of a different recipe (hash {prev.get('recipe_hash')} != "
                f"{recipe.hash()}); pass --overwrite or choose another output directory"
            )
    fs.makedirs(d, exist_ok=True)
    with fs.open(marker, "w") as fh:
        json.dump({"recipe_hash": recipe.hash(), "recipe": recipe.raw, "source": recipe.source}, fh, indent=2, default=str)


def make_executor(recipe: Recipe, pipeline: list, logging_dir: str, *, depends=None, slurm_dry_run: bool | None = None):
    if recipe.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(
            pipeline, tasks=recipe.tasks, workers=recipe.workers, logging_dir=logging_dir, depends=depends
        )
    if recipe.executor == "ray":
        import ray
        from datatrove.executor.ray import RayPipelineExecutor

        if not ray.is_initialized():
            address = recipe.ray.get("address") or os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address)
            else:  # a local cluster on this machine
                ray.init(num_cpus=recipe.ray.get("num_cpus", recipe.workers), include_dashboard=False, log_to_driver=False)
        return RayPipelineExecutor(
            pipeline,
            tasks=recipe.tasks,
            workers=recipe.workers,
            logging_dir=logging_dir,
            depends=depends,
            cpus_per_task=recipe.ray.get("cpus_per_task", 1),
            mem_per_cpu_gb=recipe.ray.get("mem_per_cpu_gb", 2),
        )
    if recipe.executor == "slurm":
        from pipelines.slurm import make_slurm_executor

        return make_slurm_executor(recipe, pipeline, logging_dir, depends=depends, dry_run=slurm_dry_run)
    raise RecipeError(f"unknown executor {recipe.executor!r}")


def run_recipe(recipe: Recipe, *, overwrite: bool = False, slurm_dry_run: bool | None = None) -> dict[str, Any]:
    """Run every phase of ``recipe`` and check the accounting. Returns the run summary."""
    t0 = time.time()
    shards = list_shards(recipe)
    log.info("recipe %s: %d shards, %d stages, executor %s (%d tasks, %d workers) -> %s",
             recipe.name, len(shards), len(recipe.stages), recipe.executor, recipe.tasks, recipe.workers, recipe.output_dir)
    _check_output_dir(recipe, overwrite)
    out = recipe.output_dir.rstrip("/")

    if any(s.stage in DEDUP_STAGES for s in recipe.stages):
        from pipelines.dedup_phases import run_with_dedup

        executors = run_with_dedup(recipe, shards, slurm_dry_run=slurm_dry_run)
    else:
        ex = make_executor(recipe, build_pipeline(recipe, shards), f"{out}/logs/curate", slurm_dry_run=slurm_dry_run)
        executors = [ex]
        if recipe.executor != "slurm":
            ex.run()
    if recipe.executor == "slurm":
        return {"executor": "slurm", "launch_scripts": [getattr(e, "launch_script_path", None) for e in executors]}

    return finish_run(recipe, shards, f"datatrove-{recipe.executor}", t0)
