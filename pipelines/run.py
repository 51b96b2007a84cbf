"""``run_recipe``: run a loaded recipe on datatrove (local, Ray, Slurm: ``engine.executor``) or Apache Beam."""

from __future__ import annotations

from typing import Any

from corpusmill.pipelines.recipe import Recipe, RecipeError

ENGINES = ("datatrove", "beam")


def run_recipe(
    recipe: Recipe,
    *,
    engine: str = "datatrove",
    overwrite: bool = False,
    beam_args: list[str] | None = None,
    slurm_dry_run: bool | None = None,
) -> dict[str, Any]:
    """Curate with ``recipe`` and return the run summary (what ``RUN/run.json`` holds)."""
    from corpusmill.pipelines.run_dir import release_output_dir

    if engine not in ENGINES:
        raise RecipeError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    try:
        if engine == "datatrove" and recipe.executor == "slurm":  # submits jobs: nothing to watch here
            return _run(recipe, engine, overwrite, beam_args, slurm_dry_run)
        from corpusmill.pipelines.inputs import list_shards
        from corpusmill.pipelines.progress import run_view

        shards = list_shards(recipe)
        sizes = [s.size for s in shards]
        with run_view(recipe.output_dir, len(shards), sum(sizes) if all(x is not None for x in sizes) else None):
            return _run(recipe, engine, overwrite, beam_args, slurm_dry_run)
    finally:  # the engines lock the run directory (pipelines/run_dir.py)
        release_output_dir(recipe.output_dir)


def _run(recipe: Recipe, engine: str, overwrite: bool, beam_args: list[str] | None,
         slurm_dry_run: bool | None) -> dict[str, Any]:
    if engine == "beam":
        from corpusmill.pipelines.beam_engine import run_recipe_beam

        return run_recipe_beam(recipe, beam_args=beam_args or [], overwrite=overwrite)
    if engine != "datatrove":
        raise RecipeError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    if beam_args:
        raise RecipeError(f"unrecognized arguments for the datatrove engine: {' '.join(beam_args)}")
    from corpusmill.pipelines.datatrove_engine import run_recipe as run_datatrove

    return run_datatrove(recipe, overwrite=overwrite, slurm_dry_run=slurm_dry_run)
