"""YAML recipes: what to read, which stages to run, where to write, how to execute.

A recipe is plain data (top-level keys ``name``, ``data_root``, ``inputs``, ``stages``, ``output``,
``engine``), loaded with ``yaml.safe_load`` (no tags, no code) and validated here before any work starts;
every error names the offending key (``stages[3].gopher_quality: unknown parameter 'min_wordz'``).
Every key, with an annotated example: docs/architecture.md, "Recipes".
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RECIPE_VERSION = "1.0"

TOP_KEYS = {"name", "data_root", "inputs", "stages", "output", "engine", "version", "description"}
INPUT_KEYS = {"path", "glob", "reader", "options", "source_kind"}
OUTPUT_KEYS = {"dir", "compression", "row_group_size", "dropped_text_chars"}
ENGINE_KEYS = {"executor", "tasks", "workers", "slurm", "ray", "beam"}
EXECUTORS = {"local", "ray", "slurm"}


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the bad key."""


@dataclass
class InputSpec:
    path: str
    reader: str
    glob: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageSpec:
    stage: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recipe:
    name: str
    data_root: str | None
    inputs: list[InputSpec]
    stages: list[StageSpec]
    output_dir: str
    compression: str = "zstd"
    row_group_size: int = 5000
    dropped_text_chars: int = 2000
    executor: str = "local"
    tasks: int = 1
    workers: int = 1
    slurm: dict[str, Any] = field(default_factory=dict)
    ray: dict[str, Any] = field(default_factory=dict)
    beam: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # path of the YAML file
    raw: dict[str, Any] = field(default_factory=dict)

    def hash(self) -> str:
        """Hash of what determines the outputs (inputs, stages, output format), not of engine settings."""
        material = {k: self.raw.get(k) for k in ("data_root", "inputs", "stages")}
        material["output"] = {k: v for k, v in (self.raw.get("output") or {}).items() if k != "dir"}
        return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:16]


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: Any) -> Any:
    """``${VAR}`` and ``${VAR:-default}`` in strings, from the environment."""
    if isinstance(value, str):

        def sub(m: re.Match) -> str:
            v = os.environ.get(m.group(1))
            if v is None:
                if m.group(2) is None:
                    raise RecipeError(f"environment variable {m.group(1)} is not set (used in recipe)")
                return m.group(2)
            return v

        return _ENV.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    return value


MAX_RECIPE_VALUES = 100_000
MAX_RECIPE_BYTES = 8 << 20  # a real recipe (even with big per-language tables) is a few hundred kB


def _check_size(data: Any) -> None:
    """Refuse a recipe whose YAML aliases expand into a huge document (a "billion laughs" recipe would
    otherwise hang the environment-variable expansion and the hashing, or write a 1 GB recipe.json):
    at most MAX_RECIPE_VALUES values and MAX_RECIPE_BYTES bytes of text once expanded."""
    stack, n, size = [data], 0, 0
    while stack:
        v = stack.pop()
        n += 1
        if n > MAX_RECIPE_VALUES:
            raise RecipeError(f"recipe: more than {MAX_RECIPE_VALUES:,} values once YAML aliases are expanded")
        if isinstance(v, dict):
            stack.extend(v.values())
            size += sum(len(str(k)) for k in v)
        elif isinstance(v, list):
            stack.extend(v)
        else:
            size += len(v) if isinstance(v, str) else 8
        if size > MAX_RECIPE_BYTES:
            raise RecipeError(f"recipe: more than {MAX_RECIPE_BYTES:,} bytes once YAML aliases are expanded "
                              "(a recipe is a few kB; remove the repeated aliases)")


def _check_keys(where: str, d: Any, allowed: set[str]) -> dict:
    if not isinstance(d, dict):
        raise RecipeError(f"{where}: expected a mapping, got {type(d).__name__}")
    for k in d:
        if k not in allowed:
            raise RecipeError(f"{where}: unknown key {k!r} (allowed: {', '.join(sorted(allowed))})")
    return d


def _int(where: str, v: Any, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise RecipeError(f"{where}: expected an integer >= {minimum}, got {v!r}")
    return v


def is_url(path: str) -> bool:
    return "://" in path


def _resolve(base: Path | None, path: str) -> str:
    if is_url(path) or os.path.isabs(path) or base is None:
        return path
    return os.path.normpath(str(base / path))


# Beam options a recipe may set (deployment settings). Others (--environment_type/--environment_config run
# a shell command, --setup_file/--requirements_file/--extra_package install code, other runners start job
# servers) belong on the command line, where the user sees them: a recipe cannot execute code.
BEAM_RECIPE_OPTIONS = {
    "runner", "project", "region", "zone", "worker_zone", "temp_location", "staging_location", "job_name",
    "num_workers", "max_num_workers", "autoscaling_algorithm", "machine_type", "worker_machine_type",
    "disk_size_gb", "worker_disk_type", "network", "subnetwork", "use_public_ips", "no_use_public_ips",
    "service_account_email", "labels", "experiments", "dataflow_service_options", "direct_running_mode",
    "direct_num_workers", "number_of_worker_harness_threads", "max_cache_memory_usage_mb",
}
BEAM_RECIPE_RUNNERS = {"DirectRunner", "direct", "FnApiRunner", "DataflowRunner", "dataflow"}


def _check_beam_args(args: Any) -> None:
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise RecipeError("engine.beam.args: expected a list of strings")
    for i, arg in enumerate(args):
        if not arg.startswith("-"):
            if i and args[i - 1].startswith("--") and "=" not in args[i - 1]:
                continue  # the value of the option before
            raise RecipeError(f"engine.beam.args: unexpected {arg!r} (options look like --name=value)")
        name, _, value = arg.lstrip("-").partition("=")
        if name not in BEAM_RECIPE_OPTIONS:
            raise RecipeError(f"engine.beam.args: --{name} cannot be set in a recipe (allowed: "
                              f"{', '.join(sorted(BEAM_RECIPE_OPTIONS))}); pass it on the command line")
        if name == "runner":
            value = value or (args[i + 1] if i + 1 < len(args) else "")
            if value not in BEAM_RECIPE_RUNNERS:
                raise RecipeError(f"engine.beam.args: runner {value!r} cannot be set in a recipe (allowed: "
                                  f"{', '.join(sorted(BEAM_RECIPE_RUNNERS))}); pass it on the command line")


def load_recipe(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load and validate a recipe file. ``overrides`` (data_root, output_dir, executor, tasks, workers)
    come from the command line and win over the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise RecipeError(f"cannot read recipe {path}: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:  # safe_load refuses python tags: recipes cannot run code
        raise RecipeError(f"{path}: not valid (safe) YAML: {e}") from None
    except RecursionError:
        raise RecipeError(f"{path}: nested too deeply") from None
    return parse_recipe(data, base_dir=p.resolve().parent, source=str(p), overrides=overrides)


def parse_recipe(
    data: Any, base_dir: Path | None = None, source: str | None = None, overrides: dict[str, Any] | None = None
) -> Recipe:
    from corpusmill.curation.params import ParamError, check_params
    from corpusmill.curation.readers import REGISTRY as READERS
    from corpusmill.curation.registry import STAGES

    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    data = _check_keys("recipe", data, TOP_KEYS)
    _check_size(data)
    raw = copy.deepcopy(data)
    data = _expand(data)

    name = str(data.get("name") or (Path(source).stem if source else "recipe"))
    data_root = overrides.get("data_root") or data.get("data_root")
    if data_root is not None:
        if not isinstance(data_root, str):
            raise RecipeError("data_root: expected a path string")
        # a command-line data root is relative to the current directory, a recipe's to the recipe file
        data_root = _resolve(None if "data_root" in overrides else base_dir, data_root)
        if not is_url(data_root):
            data_root = os.path.abspath(data_root)

    inputs_raw = data.get("inputs")
    if not isinstance(inputs_raw, list) or not inputs_raw:
        raise RecipeError("inputs: expected a non-empty list")
    inputs = []
    for i, item in enumerate(inputs_raw):
        where = f"inputs[{i}]"
        _check_keys(where, item, INPUT_KEYS)
        if "path" not in item or not isinstance(item["path"], str):
            raise RecipeError(f"{where}.path: required (a file, directory, glob or URL)")
        reader = item.get("reader")
        if reader not in READERS:
            raise RecipeError(f"{where}.reader: unknown reader {reader!r} (known: {', '.join(sorted(READERS))})")
        options = item.get("options") or {}
        _check_keys(f"{where}.options", options, set(options))
        if "source_kind" in item:
            options = {**options, "source_kind": item["source_kind"]}
        path = item["path"]
        if data_root is not None and not is_url(path) and not os.path.isabs(path):
            path = data_root.rstrip("/") + "/" + path if is_url(data_root) else str(Path(data_root) / path)
        else:
            path = _resolve(base_dir, path)
        try:
            check_params(f"{where}.options", READERS[reader], options)
            READERS[reader](**options)
        except ParamError as e:
            raise RecipeError(str(e)) from None
        except TypeError as e:
            raise RecipeError(f"{where}.options: {e}") from None
        inputs.append(InputSpec(path=path, reader=reader, glob=item.get("glob"), options=options))

    stages_raw = data.get("stages") or []
    if not isinstance(stages_raw, list):
        raise RecipeError("stages: expected a list")
    stages = []
    for i, item in enumerate(stages_raw):
        where = f"stages[{i}]"
        if isinstance(item, str):
            item = {"stage": item}
        if not isinstance(item, dict) or "stage" not in item:
            raise RecipeError(f"{where}: expected a mapping with a 'stage' key")
        params = {k: v for k, v in item.items() if k != "stage"}
        sname = item["stage"]
        if sname not in STAGES:
            raise RecipeError(f"{where}.stage: unknown stage {sname!r} (known: {', '.join(sorted(STAGES))})")
        spec = StageSpec(stage=sname, params=params)
        from corpusmill.curation.registry import validate_params

        try:
            validate_params(sname, params)
        except ParamError as e:
            raise RecipeError(f"{where}.{e}") from None
        except TypeError as e:
            raise RecipeError(f"{where}.{sname}: {e}") from None
        stages.append(spec)
    seen = [s.stage for s in stages]
    for dedup in ("exact_dedup", "minhash_dedup"):
        if seen.count(dedup) > 1:
            raise RecipeError(f"stages: {dedup} appears more than once")

    out = _check_keys("output", data.get("output") or {}, OUTPUT_KEYS)
    output_dir = overrides.get("output_dir") or out.get("dir")
    if output_dir is None or output_dir == "":
        raise RecipeError("output.dir: required (or pass --output)")
    if not isinstance(output_dir, str):
        raise RecipeError(f"output.dir: expected a path string, got {output_dir!r}")
    if not is_url(output_dir):
        output_dir = os.path.abspath(output_dir)
    compression = out.get("compression", "zstd")
    if compression not in {"zstd", "snappy", "gzip", "brotli", "lz4", "none"}:
        raise RecipeError(f"output.compression: unsupported codec {compression!r}")

    eng = _check_keys("engine", data.get("engine") or {}, ENGINE_KEYS)
    executor = overrides.get("executor") or eng.get("executor", "local")
    if executor not in EXECUTORS:
        raise RecipeError(f"engine.executor: {executor!r} is not one of {', '.join(sorted(EXECUTORS))}")
    tasks = _int("engine.tasks", overrides.get("tasks") or eng.get("tasks", 1))
    workers = _int("engine.workers", overrides.get("workers") or eng.get("workers", min(tasks, os.cpu_count() or 1)))

    beam = _check_keys("engine.beam", eng.get("beam") or {}, {"args"})
    _check_beam_args(beam.get("args") or [])

    return Recipe(
        name=name,
        data_root=data_root,
        inputs=inputs,
        stages=stages,
        output_dir=output_dir,
        compression=compression,
        row_group_size=_int("output.row_group_size", out.get("row_group_size", 5000)),
        dropped_text_chars=_int("output.dropped_text_chars", out.get("dropped_text_chars", 2000), 0),
        executor=executor,
        tasks=tasks,
        workers=workers,
        slurm=dict(eng.get("slurm") or {}),
        ray=dict(eng.get("ray") or {}),
        beam=dict(beam),
        source=source,
        raw=raw,
    )
