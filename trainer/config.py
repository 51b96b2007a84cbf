"""Training configuration: one flat dataclass, YAML presets, ``key=value`` overrides.

A config file is YAML with any of the fields of :class:`TrainConfig`, plus an optional
``preset: NAME`` naming a file in ``trainer/presets/`` to start from. The keys are flat on purpose:
``--set n_layer=4`` works for every field.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


@dataclass
class TrainConfig:
    # data: DIR/train/* and DIR/val/* token shards (see trainer/data.py); DIR/manifest.json may hold vocab_size
    data_dir: str | None = None
    vocab_size: int | None = None  # None: manifest.json's "vocab_size", else max token id + 1
    pad_vocab_multiple: int = 1  # round the embedding table up (64 is faster on GPUs)
    out_dir: str = "out/train"

    # model (trainer/model.py GPTConfig)
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 128
    seq_len: int = 128
    dropout: float = 0.0
    bias: bool = False
    pos_emb: str = "learned"  # "learned" or "rotary"
    rope_theta: float = 10000.0

    # batch: one optimizer step sees batch_size * grad_accum sequences of seq_len tokens, whatever the
    # number of processes (grad_accum must be divisible by the world size)
    batch_size: int = 8
    grad_accum: int = 1
    max_steps: int = 300
    stop_after_steps: int | None = None  # checkpoint and stop early (the schedule still ends at max_steps)

    # optimizer and schedule
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 20
    lr_decay_steps: int | None = None  # None: max_steps
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0

    # evaluation, logging, checkpoints
    eval_interval: int = 50  # also evaluates at step 0 and after the last step
    eval_batches: int = 8
    log_interval: int = 10  # console only; every step goes to metrics.jsonl / metrics.csv
    ckpt_interval: int = 100  # and at the end
    resume: Any = False  # True: continue from out_dir/ckpt.pt (error if absent); "auto": if present
    plot: bool = True

    # system
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto (bfloat16 on CUDA when supported, else float32) | bfloat16 | float32
    compile: bool = False
    peak_flops: float | None = None  # per-device peak FLOP/s; enables the MFU column (e.g. 312e12 for A100 bf16)
    threads: int | None = None  # torch.set_num_threads on CPU
    quiet: bool = False

    def validate(self) -> None:
        if self.pos_emb not in ("learned", "rotary"):
            raise ValueError(f"pos_emb must be 'learned' or 'rotary', not {self.pos_emb!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if self.pos_emb == "rotary" and (self.n_embd // self.n_head) % 2:
            raise ValueError("rotary embeddings need an even head dimension")
        if self.warmup_steps < 0 or self.max_steps < 1:
            raise ValueError("need max_steps >= 1 and warmup_steps >= 0")
        if self.dtype not in ("auto", "bfloat16", "float32"):
            raise ValueError(f"dtype must be auto, bfloat16 or float32, not {self.dtype!r}")
        if self.resume not in (True, False, "auto"):
            raise ValueError(f"resume must be true, false or auto, not {self.resume!r}")


FIELD_TYPES = {f.name: f.type for f in fields(TrainConfig)}


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _read_yaml(path: Path) -> dict:
    with open(path) as f:
        d = yaml.safe_load(f) or {}
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return d


def _expand(d: dict, seen: tuple = ()) -> dict:
    """Resolve ``preset: NAME`` chains: the preset's keys first, then this mapping's."""
    d = dict(d)
    name = d.pop("preset", None)
    if name is None:
        return d
    if name in seen:
        raise ValueError(f"preset cycle: {' -> '.join(seen + (name,))}")
    p = PRESETS_DIR / f"{name}.yaml"
    if not p.is_file():
        raise ValueError(f"unknown preset {name!r}; have {preset_names()}")
    base = _expand(_read_yaml(p), seen + (name,))
    base.update(d)
    return base


def parse_value(key: str, text: str) -> Any:
    """``--set key=value``: the value is read as YAML (so 3e-4, true, null, 12 work)."""
    v = yaml.safe_load(text)
    if isinstance(v, str) and FIELD_TYPES.get(key) in ("float", "float | None"):
        v = float(v)  # YAML 1.1 reads "3e-4" as a string
    return v


def load_config(source: str | Path | dict | TrainConfig | None = None, overrides: dict | list | None = None) -> TrainConfig:
    """A TrainConfig from a dict, a YAML path, a preset name or a TrainConfig, then overrides.

    ``overrides`` is a dict, or a list of "key=value" strings (as given to ``--set``).
    """
    if isinstance(source, TrainConfig):
        d = asdict(source)
    elif source is None:
        d = {}
    elif isinstance(source, dict):
        d = _expand(source)
    else:
        p = Path(source)
        if p.is_file():
            d = _expand(_read_yaml(p))
        elif str(source) in preset_names():
            d = _expand({"preset": str(source)})
        else:
            raise FileNotFoundError(f"no config file {source} (presets: {preset_names()})")
    if isinstance(overrides, (list, tuple)):
        ov = {}
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"--set expects key=value, got {item!r}")
            k, v = item.split("=", 1)
            ov[k.strip()] = parse_value(k.strip(), v)
        overrides = ov
    d.update(overrides or {})
    unknown = sorted(set(d) - set(FIELD_TYPES))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}")
    for k, v in list(d.items()):  # YAML 1.1 leaves "3e-4" a string; floats are floats
        if isinstance(v, str) and FIELD_TYPES[k] in ("float", "float | None"):
            d[k] = float(v)
    cfg = TrainConfig(**d)
    cfg.validate()
    return cfg


def to_json(cfg: TrainConfig) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True)
