"""corpusmill: raw pretraining shards -> curated Parquet -> BPE vocabulary -> packed token shards -> a GPT.

The installed package maps the repository's folders: ``corpusmill.curation`` (stages),
``corpusmill.pipelines`` (engines, recipes), ``corpusmill.schemas``, ``corpusmill.tokenizer``,
``corpusmill.trainer``; ``corpusmill.stats`` (DuckDB statistics, report) and ``corpusmill.tools``
(commands that are not part of a run) live here. The names below are what a library user needs::

    import corpusmill
    recipe = corpusmill.load_recipe("examples/default.yaml", {"output_dir": "runs/x"})
    summary = corpusmill.run_recipe(recipe)

They are imported on first use, so ``import corpusmill`` (and ``corpusmill --help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "Filter": "corpusmill.curation.stage",
    "Transform": "corpusmill.curation.stage",
    "Reader": "corpusmill.curation.readers",
    "Record": "corpusmill.curation.readers",
    "get_reader": "corpusmill.curation.readers",
    "Recipe": "corpusmill.pipelines.recipe",
    "RecipeError": "corpusmill.pipelines.recipe",
    "load_recipe": "corpusmill.pipelines.recipe",
    "run_recipe": "corpusmill.pipelines.run",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'corpusmill' has no attribute {name!r}")
