"""``corpusmill train`` and ``corpusmill sample``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from corpusmill.preflight import UsageError, need_dir, need_tokenizer


def add_subcommands(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the reference GPT on packed token shards",
        description="Train the reference GPT. CONFIG is a YAML file (it may say `preset: tiny`) or a preset "
        "name (tiny, gpt2-124m). Several processes: torchrun --nproc_per_node N -m corpusmill.trainer.train CONFIG ...",
    )
    p.add_argument("config", help="YAML config file or preset name")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable), e.g. --set data_dir=runs/x/tokens --set max_steps=300")
    p.add_argument("--data-dir", help="shortcut for --set data_dir=...")
    p.add_argument("--out-dir", help="shortcut for --set out_dir=...")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT_DIR/ckpt.pt (error if absent). Without it a rerun continues from a "
                        "checkpoint left in OUT_DIR (e.g. by a killed run); --set resume=false starts over")
    p.set_defaults(func=_train)

    s = subparsers.add_parser("sample", help="generate text from a trained checkpoint",
                              description="Decode text from a checkpoint (a ckpt.pt or the training out_dir).")
    s.add_argument("--checkpoint", required=True, help="ckpt.pt or the out_dir holding it")
    s.add_argument("--tokenizer", required=True, help="tokenizer.json (HF tokenizers)")
    s.add_argument("--prompt", default="", help="text to continue")
    s.add_argument("--max-new-tokens", type=int, default=100)
    s.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    s.add_argument("--top-k", type=int, default=200)
    s.add_argument("--seed", type=int, default=1337)
    s.add_argument("--device", default="cpu")
    s.add_argument("--draft-checkpoint", help="small draft model for speculative decoding (same tokenizer)")
    s.add_argument("--speculative", action="store_true", help="speculative decoding with --draft-checkpoint")
    s.add_argument("--num-draft", type=int, default=4, help="tokens the draft proposes per round")
    s.add_argument("--json", action="store_true", help="print a JSON object (text, token ids, stats)")
    s.set_defaults(func=_sample)


def needs_torch(command: str) -> bool:
    """True (after one line on stderr) when torch is missing: it comes with the ``train`` extra."""
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        return False
    print(f"corpusmill {command}: needs torch, which corpusmill installs only with the train extra: "
          "pip install 'corpusmill[train]'", file=sys.stderr)
    return True


def _train(args) -> int:
    if needs_torch("train"):
        return 2
    from corpusmill.trainer.config import load_config, preset_names
    from corpusmill.trainer.data import split_shards
    from corpusmill.trainer.train import train

    overrides = list(args.overrides)
    if args.data_dir:
        overrides.append(f"data_dir={args.data_dir}")
    if args.out_dir:
        overrides.append(f"out_dir={args.out_dir}")
    if args.resume:
        overrides.append("resume=true")
    if not Path(args.config).is_file() and args.config not in preset_names():
        raise UsageError(f"config {args.config} is neither a file nor a preset ({', '.join(preset_names())})")
    _check_overrides(overrides)
    try:
        cfg = load_config(args.config, overrides)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{args.config}: {e}; fix the config or the --set value") from None
    if not any(o.split("=", 1)[0].strip() == "resume" for o in overrides) and cfg.resume is False:
        cfg.resume = "auto"  # rerunning the same command after a crash continues from its last checkpoint
    if not cfg.data_dir:
        raise UsageError("data_dir is not set; pass --data-dir DIR (the output of `corpusmill pack`)")
    need_dir(cfg.data_dir, "data_dir", "pass --data-dir DIR (the output of `corpusmill pack`)")
    try:
        split_shards(cfg.data_dir, "train")
    except FileNotFoundError as e:
        raise UsageError(f"{e}; pass --data-dir DIR (the output of `corpusmill pack`)") from None
    result = train(cfg)
    print(json.dumps(result, indent=2))
    return 0


def _check_overrides(overrides: list[str]) -> None:
    """``--set key=value`` values of the right type, before the config is built."""
    from corpusmill.trainer.config import FIELD_TYPES, parse_value

    kinds = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool), "bool": lambda v: isinstance(v, bool),
             "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
             "str": lambda v: isinstance(v, str), "None": lambda v: v is None}
    for item in overrides:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        if key not in FIELD_TYPES:
            raise UsageError(f"--set {key}: unknown config key (known: {', '.join(sorted(FIELD_TYPES))})")
        try:
            value = parse_value(key, text)
        except ValueError:
            value = text
        allowed = [k.strip() for k in str(FIELD_TYPES[key]).split("|")]
        if all(k in kinds for k in allowed) and not any(kinds[k](value) for k in allowed):
            raise UsageError(f"--set {key}={text}: expected {' or '.join(allowed)}")


def _sample(args) -> int:
    if needs_torch("sample"):
        return 2
    import time

    import torch
    from tokenizers import Tokenizer

    from corpusmill.trainer.sample import generate, speculative_generate
    from corpusmill.trainer.train import load_model

    if args.speculative and not args.draft_checkpoint:
        raise UsageError("--speculative needs --draft-checkpoint")
    for flag, ck in (("--checkpoint", args.checkpoint), ("--draft-checkpoint", args.draft_checkpoint)):
        if ck and not (Path(ck).is_file() or (Path(ck) / "ckpt.pt").is_file()):
            raise UsageError(f"{flag} {ck}: no such checkpoint (give a ckpt.pt or the training out_dir holding it)")
    tok = Tokenizer.from_file(str(need_tokenizer(args.tokenizer)))
    model, meta = load_model(args.checkpoint, args.device)
    vocab = meta.get("vocab_size")
    ids = tok.encode(args.prompt).ids if args.prompt else []
    if not ids:  # start from the first special token (e.g. <|endoftext|>), else id 0
        specials = [t for t in tok.get_added_tokens_decoder().values() if t.special] if hasattr(tok, "get_added_tokens_decoder") else []
        ids = [tok.token_to_id(specials[0].content)] if specials else [0]
    if vocab is not None and max(ids) >= vocab:
        raise UsageError(f"the tokenizer gives ids >= the model's vocab_size {vocab}: wrong --tokenizer?")
    gen = torch.Generator(device=args.device).manual_seed(args.seed)
    top_k = args.top_k if args.top_k and args.top_k > 0 else None
    t0 = time.perf_counter()
    stats = {}
    if args.speculative:
        draft, _ = load_model(args.draft_checkpoint, args.device)
        out, stats = speculative_generate(model, draft, ids, args.max_new_tokens, num_draft=args.num_draft,
                                          temperature=args.temperature, top_k=top_k, vocab_size=vocab, generator=gen)
    else:
        out = generate(model, ids, args.max_new_tokens, temperature=args.temperature, top_k=top_k,
                       vocab_size=vocab, generator=gen)
    dt = time.perf_counter() - t0
    new = out[len(ids):]
    stats.update({"new_tokens": len(new), "seconds": round(dt, 3), "tokens_per_s": round(len(new) / dt, 1) if dt else None})
    text = tok.decode(out)
    if args.json:
        print(json.dumps({"text": text, "prompt_ids": ids, "new_ids": new, "stats": stats}))
    else:
        print(text)
        print(json.dumps(stats), file=sys.stderr)
    return 0
