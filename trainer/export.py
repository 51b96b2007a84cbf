"""``corpusmill export``: a trained checkpoint -> a Hugging Face ``transformers`` model directory.

Learned positions map onto GPT-2 (``GPT2LMHeadModel``, exact GELU); rotary positions onto GPT-NeoX
(``GPTNeoXForCausalLM``): it has our block exactly (LayerNorm, GELU MLP, rotate-half rotary, sequential
pre-norm residuals), which a Llama-style model (RMSNorm, SwiGLU) cannot express. Weights go to
``model.safetensors`` (the embedding cut to the tokenizer's vocabulary, dropping padding rows), with
``config.json``, ``generation_config.json`` and the tokenizer (``pad_token`` = ``<|endoftext|>``).
``AutoModelForCausalLM.from_pretrained(OUT)`` + ``AutoTokenizer.from_pretrained(OUT)`` load it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

EOS = "<|endoftext|>"


class ExportError(ValueError):
    pass


def _zeros(n: int):
    import torch

    return torch.zeros(n)


def _bias(sd: dict, key: str, n: int):
    return sd[key] if key in sd else _zeros(n)


def gpt2_state(sd: dict, cfg, vocab: int) -> tuple[dict, dict]:
    """Our state dict -> (GPT2LMHeadModel state dict, GPT2Config kwargs). Conv1D stores (in, out)."""
    C, L = cfg.n_embd, cfg.n_layer
    out = {"transformer.wte.weight": sd["wte.weight"][:vocab], "transformer.wpe.weight": sd["wpe.weight"],
           "transformer.ln_f.weight": sd["ln_f.weight"], "transformer.ln_f.bias": _bias(sd, "ln_f.bias", C)}
    for i in range(L):
        s, h = f"blocks.{i}.", f"transformer.h.{i}."
        for ln in ("ln_1", "ln_2"):
            out[h + ln + ".weight"] = sd[s + ln + ".weight"]
            out[h + ln + ".bias"] = _bias(sd, s + ln + ".bias", C)
        for ours, theirs, n in (("attn.qkv", "attn.c_attn", 3 * C), ("attn.proj", "attn.c_proj", C),
                                ("mlp.fc", "mlp.c_fc", 4 * C), ("mlp.proj", "mlp.c_proj", C)):
            out[h + theirs + ".weight"] = sd[s + ours + ".weight"].t().contiguous()
            out[h + theirs + ".bias"] = _bias(sd, s + ours + ".bias", n)
    conf = dict(model_type="gpt2", architectures=["GPT2LMHeadModel"], vocab_size=vocab, n_positions=cfg.seq_len,
                n_embd=C, n_layer=L, n_head=cfg.n_head, n_inner=4 * C, activation_function="gelu",
                layer_norm_epsilon=1e-5, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True)
    return out, conf


def neox_state(sd: dict, cfg, vocab: int) -> tuple[dict, dict]:
    """Our rotary GPT -> (GPTNeoXForCausalLM state dict, GPTNeoXConfig kwargs).

    Our fused qkv weight is laid out (3, head, head_dim); NeoX's query_key_value is (head, 3, head_dim).
    """
    C, L, H = cfg.n_embd, cfg.n_layer, cfg.n_head
    hd = C // H
    out = {"gpt_neox.embed_in.weight": sd["wte.weight"][:vocab], "embed_out.weight": sd["wte.weight"][:vocab],
           "gpt_neox.final_layer_norm.weight": sd["ln_f.weight"],
           "gpt_neox.final_layer_norm.bias": _bias(sd, "ln_f.bias", C)}
    for i in range(L):
        s, h = f"blocks.{i}.", f"gpt_neox.layers.{i}."
        for ours, theirs in (("ln_1", "input_layernorm"), ("ln_2", "post_attention_layernorm")):
            out[h + theirs + ".weight"] = sd[s + ours + ".weight"]
            out[h + theirs + ".bias"] = _bias(sd, s + ours + ".bias", C)
        w = sd[s + "attn.qkv.weight"].view(3, H, hd, C).transpose(0, 1).reshape(3 * C, C)
        b = _bias(sd, s + "attn.qkv.bias", 3 * C).view(3, H, hd).transpose(0, 1).reshape(3 * C)
        out[h + "attention.query_key_value.weight"] = w.contiguous()
        out[h + "attention.query_key_value.bias"] = b.contiguous()
        for ours, theirs, n in (("attn.proj", "attention.dense", C), ("mlp.fc", "mlp.dense_h_to_4h", 4 * C),
                                ("mlp.proj", "mlp.dense_4h_to_h", C)):
            out[h + theirs + ".weight"] = sd[s + ours + ".weight"]
            out[h + theirs + ".bias"] = _bias(sd, s + ours + ".bias", n)
    conf = dict(model_type="gpt_neox", architectures=["GPTNeoXForCausalLM"], vocab_size=vocab, hidden_size=C,
                num_hidden_layers=L, num_attention_heads=H, intermediate_size=4 * C, hidden_act="gelu",
                rotary_pct=1.0, partial_rotary_factor=1.0, rotary_emb_base=cfg.rope_theta,
                rope_theta=cfg.rope_theta, max_position_embeddings=cfg.seq_len, layer_norm_eps=1e-5,
                use_parallel_residual=False, attention_bias=True, attention_dropout=0.0, hidden_dropout=0.0,
                tie_word_embeddings=False, use_cache=True)
    return out, conf


def _tokenizer_file(tokenizer: str | None) -> Path:
    if not tokenizer:
        raise ExportError("--tokenizer is required: the tokenizer.json the model was trained with")
    f = Path(tokenizer) / "tokenizer.json" if Path(tokenizer).is_dir() else Path(tokenizer)
    if not f.is_file():
        raise ExportError(f"--tokenizer {tokenizer}: no tokenizer.json there (the `corpusmill train-tokenizer` output)")
    return f


def export_model(checkpoint: str | os.PathLike, out: str | os.PathLike, tokenizer: str | None = None) -> dict:
    from safetensors.torch import save_file
    from tokenizers import Tokenizer

    from corpusmill.trainer.train import load_model

    ckpt, out = Path(checkpoint), Path(out).expanduser().resolve()
    if out.exists():
        raise ExportError(f"{out}: already exists; choose a new directory (export never writes over one)")
    tok_file = _tokenizer_file(tokenizer)
    try:
        model, meta = load_model(ckpt, "cpu")
    except FileNotFoundError as e:
        raise ExportError(f"{checkpoint}: {e} (pass a ckpt.pt or the `corpusmill train` out_dir)") from None
    cfg = model.cfg
    tok = Tokenizer.from_file(str(tok_file))
    vocab = int(meta.get("vocab_size") or cfg.vocab_size)
    if tok.get_vocab_size() > vocab or tok.token_to_id(EOS) is None:
        raise ExportError(f"--tokenizer {tok_file}: {tok.get_vocab_size()} tokens for a model of {vocab} "
                          f"(or no {EOS}): not the tokenizer this model was trained with")
    sd = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    state, conf = (gpt2_state if cfg.pos_emb == "learned" else neox_state)(sd, cfg, vocab)
    eos = tok.token_to_id(EOS)
    conf.update(bos_token_id=eos, eos_token_id=eos, pad_token_id=eos, torch_dtype="float32",
                corpusmill={"pos_emb": cfg.pos_emb, "step": meta.get("step"), "padded_vocab_size": cfg.vocab_size})
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        # shared tensors must not alias in safetensors: each gets its own copy
        save_file({k: v.clone().contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
        gen = {"bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos, "do_sample": False,
               "max_length": cfg.seq_len}
        (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
        shutil.copyfile(tok_file, tmp / "tokenizer.json")
        tcfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": EOS, "eos_token": EOS, "pad_token": EOS,
                "unk_token": None, "add_prefix_space": False, "clean_up_tokenization_spaces": False,
                "model_max_length": cfg.seq_len}
        (tmp / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2) + "\n")
        (tmp / "special_tokens_map.json").write_text(
            json.dumps({"bos_token": EOS, "eos_token": EOS, "pad_token": EOS}, indent=2) + "\n")
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"out": str(out), "architecture": conf["architectures"][0], "vocab_size": vocab,
            "params": sum(v.numel() for k, v in state.items() if k != "embed_out.weight")}


def cmd_export(args: argparse.Namespace) -> int:
    from corpusmill.trainer.cli import needs_torch

    if needs_torch("export"):
        return 2
    try:
        r = export_model(args.checkpoint, args.out, args.tokenizer)
    except ExportError as e:
        print(f"corpusmill export: {e}", file=sys.stderr)
        return 2
    print(f"{r['architecture']} ({r['params']:,} parameters, vocab {r['vocab_size']}) -> {r['out']}")
    print("load: transformers.AutoModelForCausalLM.from_pretrained(OUT), AutoTokenizer.from_pretrained(OUT)")
    return 0


def add_subcommands(sub) -> None:
    p = sub.add_parser("export", help="export a trained checkpoint as a Hugging Face transformers model directory")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="ckpt.pt or the `corpusmill train` out_dir")
    p.add_argument("out", metavar="OUT", help="new directory to create")
    p.add_argument("--tokenizer", help="tokenizer.json (or its directory) the model was trained with")
    p.set_defaults(func=cmd_export)
