"""``corpusmill train`` and ``corpusmill sample``."""

from __future__ import annotations

import json
import sys


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
    p.add_argument("--resume", action="store_true", help="continue from OUT_DIR/ckpt.pt")
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
    from corpusmill.trainer.train import train

    overrides = list(args.overrides)
    if args.data_dir:
        overrides.append(f"data_dir={args.data_dir}")
    if args.out_dir:
        overrides.append(f"out_dir={args.out_dir}")
    if args.resume:
        overrides.append("resume=true")
    result = train(args.config, overrides)
    print(json.dumps(result, indent=2))
    return 0


def _sample(args) -> int:
    if needs_torch("sample"):
        return 2
    import time

    import torch
    from tokenizers import Tokenizer

    from corpusmill.trainer.sample import generate, speculative_generate
    from corpusmill.trainer.train import load_model

    if args.speculative and not args.draft_checkpoint:
        print("--speculative needs --draft-checkpoint", file=sys.stderr)
        return 2
    tok = Tokenizer.from_file(args.tokenizer)
    model, meta = load_model(args.checkpoint, args.device)
    vocab = meta.get("vocab_size")
    ids = tok.encode(args.prompt).ids if args.prompt else []
    if not ids:  # start from the first special token (e.g. <|endoftext|>), else id 0
        specials = [t for t in tok.get_added_tokens_decoder().values() if t.special] if hasattr(tok, "get_added_tokens_decoder") else []
        ids = [tok.token_to_id(specials[0].content)] if specials else [0]
    if vocab is not None and max(ids) >= vocab:
        print(f"the tokenizer gives ids >= the model's vocab_size {vocab}: wrong tokenizer?", file=sys.stderr)
        return 2
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
