"""The byte-level BPE we train: its split pattern, an untrained tokenizer and trainer, and how a trained
one is saved (``tokenizer.json`` plus the files ``transformers``' ``AutoTokenizer`` looks for)."""

from __future__ import annotations

import json
from pathlib import Path

from corpusmill import atomic

# cl100k_base's split regex (the form with possessive quantifiers that tiktoken ships).
SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)
EOS = "<|endoftext|>"
META_FILE = "corpusmill_tokenizer.json"
TOKENIZER_FILE = "tokenizer.json"


def new_tokenizer():
    """An untrained byte-level BPE ``tokenizers.Tokenizer`` with our pre-tokenisation and decoder."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def new_trainer(vocab_size: int, special_tokens: list[str], min_frequency: int = 0, show_progress: bool = False):
    from tokenizers import pre_tokenizers, trainers

    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: no unknown tokens
        show_progress=show_progress,
    )


def special_token_list(extra: list[str] | None) -> list[str]:
    """``<|endoftext|>`` first (id 0), then the extra ones in order, without duplicates."""
    out = [EOS]
    for t in extra or []:
        if t and t not in out:
            out.append(t)
    return out


def write_json_atomic(path: Path, obj) -> None:
    atomic.write_json(path, obj, ensure_ascii=False)


def save_tokenizer(tok, out: Path, specials: list[str], model_max_length: int | None = None) -> None:
    """tokenizer.json plus the two small files transformers' AutoTokenizer looks for."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(out / TOKENIZER_FILE) as tmp:
        tok.save(str(tmp))
    write_json_atomic(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": EOS,
            "eos_token": EOS,
            "unk_token": None,
            "add_prefix_space": False,
            "clean_up_tokenization_spaces": False,
            "model_max_length": model_max_length or 1_000_000_000,
            "additional_special_tokens": specials[1:],
        },
    )
    write_json_atomic(out / "special_tokens_map.json", {"bos_token": EOS, "eos_token": EOS, "additional_special_tokens": specials[1:]})


def load_meta(tokenizer_dir: str | Path) -> dict | None:
    p = Path(tokenizer_dir) / META_FILE
    return json.loads(p.read_text()) if p.exists() else None
