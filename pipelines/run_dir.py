"""The run directory: refuse to write into the wrong place, remember which recipe wrote it (any engine)."""

from __future__ import annotations

import json
import logging

import fsspec

from corpusmill.pipelines.recipe import Recipe, RecipeError

log = logging.getLogger("corpusmill")


def check_output_dir(recipe: Recipe, overwrite: bool) -> None:
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
