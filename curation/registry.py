"""Stage names used in recipes -> the classes that implement them.

Imports are lazy (``module:Class`` strings) so that loading a recipe does not import every model
library. The dedup stages are not per-document stages: the engines split the pipeline around them
(see :mod:`corpusmill.pipelines.datatrove_engine`).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

STAGES: dict[str, str] = {
    "extract": "corpusmill.curation.extract:Extract",
    "language_id": "corpusmill.curation.filters.language:LanguageID",
    "gopher_repetition": "corpusmill.curation.filters.gopher_repetition:GopherRepetition",
    "gopher_quality": "corpusmill.curation.filters.gopher_quality:GopherQuality",
    "c4": "corpusmill.curation.filters.c4:C4Quality",
    "fineweb": "corpusmill.curation.filters.fineweb:FineWebQuality",
    "stop_words": "corpusmill.curation.filters.stop_words:StopWords",
    "token_ratio": "corpusmill.curation.filters.token_ratio:TokenToWordRatio",
    "toxicity": "corpusmill.curation.filters.toxicity:Toxicity",
    "pii": "corpusmill.curation.filters.pii:PII",
    "url_filter": "corpusmill.curation.filters.url:URLFilter",
    "decontaminate": "corpusmill.curation.filters.decontamination:Decontaminate",
    "quality": "corpusmill.curation.filters.quality:QualityClassifier",
    "exact_dedup": "corpusmill.curation.dedup.config:ExactDedupConfig",
    "minhash_dedup": "corpusmill.curation.dedup.config:MinhashDedupConfig",
}

DEDUP_STAGES = frozenset({"exact_dedup", "minhash_dedup"})


def stage_class(name: str) -> type:
    try:
        target = STAGES[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; known: {', '.join(sorted(STAGES))}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


#: the reserved recipe parameter for per-language thresholds (corpusmill.curation.filters.per_language)
PER_LANGUAGE = "per_language"
#: the reserved recipe parameter for the source scope (``source_kind`` values; every per-document stage)
SOURCES = "sources"


def source_set(name: str, sources: Any) -> frozenset[str] | None:
    """A recipe's ``sources:`` (a name or a list of names) as a set; TypeError names what is wrong."""
    if sources is None:
        return None
    if name in DEDUP_STAGES:
        raise TypeError(f"'{SOURCES}' does not apply to {name} (dedup compares all documents with each other)")
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, (list, tuple)) or not sources or not all(isinstance(s, str) and s for s in sources):
        raise TypeError(f"'{SOURCES}' must be a source_kind or a non-empty list of them "
                        f"(e.g. [web, wikipedia, book]), got {sources!r}")
    return frozenset(sources)


def validate_params(name: str, params: dict[str, Any]) -> None:
    """Raise TypeError naming any parameter the stage's constructor does not take, or
    :class:`~corpusmill.curation.params.ParamError` (key ``NAME.param``) for a wrong type or range."""
    from corpusmill.curation.params import ParamError, check_params

    cls = stage_class(name)
    params = dict(params)
    source_set(name, params.pop(SOURCES, None))
    check_params(name, cls, {k: v for k, v in params.items() if k != PER_LANGUAGE})
    if PER_LANGUAGE in params:
        from corpusmill.curation.filters.per_language import resolve_table

        try:
            if isinstance(params[PER_LANGUAGE], dict):  # the user's own table (published ones are trusted)
                for lang, overrides in resolve_table(name, params[PER_LANGUAGE]).items():
                    check_params(f"{name}.{PER_LANGUAGE}.{lang}", cls, overrides)
            build_stage(name, params)
        except ParamError:
            raise
        except (TypeError, ValueError) as e:
            raise TypeError(str(e)) from None
        params = {k: v for k, v in params.items() if k != PER_LANGUAGE}
    sig = inspect.signature(cls.__init__)
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        allowed = {n for n in sig.parameters if n != "self"}
        for k in params:
            if k not in allowed:
                raise TypeError(f"unknown parameter {k!r} (allowed: {', '.join(sorted(allowed)) or 'none'})")
    # constructors are cheap (models load in setup()), so build one to let it check values and options
    try:
        cls(**params)
    except (TypeError, ValueError) as e:
        raise TypeError(str(e)) from None


def build_stage(name: str, params: dict[str, Any] | None = None):
    params = dict(params or {})
    per_language = params.pop(PER_LANGUAGE, None)
    sources = source_set(name, params.pop(SOURCES, None))
    cls = stage_class(name)
    if per_language is not None:
        from corpusmill.curation.filters.per_language import PerLanguage
        from corpusmill.curation.stage import Filter

        if not issubclass(cls, Filter):
            raise ValueError(f"{name}: per_language applies to filter stages only")
        stage = PerLanguage(name, cls, params, per_language)
    else:
        stage = cls(**params)
    if sources is not None:
        stage.sources = sources
    return stage
