"""datatrove executors for a recipe: local, Ray (a local cluster or ``RAY_ADDRESS``) or Slurm."""

from __future__ import annotations

import os

from corpusmill.pipelines.recipe import Recipe, RecipeError


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
        from corpusmill.pipelines.slurm import make_slurm_executor

        return make_slurm_executor(recipe, pipeline, logging_dir, depends=depends, dry_run=slurm_dry_run)
    raise RecipeError(f"unknown executor {recipe.executor!r}")
