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


def new_tokenizer(model=None):
    """A byte-level BPE ``tokenizers.Tokenizer`` (untrained unless ``model`` is given) with our
    pre-tokenisation and decoder."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(model if model is not None else models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (what the ``ByteLevel`` pre-tokenizer maps bytes to)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def merges_from_ranks(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The merge that made each multi-byte token, in rank order, from a tiktoken-style ``bytes -> rank``
    vocabulary: BPE over the token's bytes with only the lower ranks ends in exactly two parts (the
    conversion ``transformers`` applies to tiktoken vocabularies)."""
    merges = []
    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) < 2:
            continue
        parts = [tok[i : i + 1] for i in range(len(tok))]
        while len(parts) > 2:
            best, at = None, -1
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < rank and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            parts[at : at + 2] = [parts[at] + parts[at + 1]]
        if len(parts) != 2:
            raise ValueError(f"token {tok!r} (rank {rank}) is not the merge of two lower-ranked tokens")
        merges.append((parts[0], parts[1]))
    return merges


def merges_from_ids(merges: list[tuple[int, int]]) -> list[tuple[bytes, bytes]]:
    """Byte merges from ``(left id, right id)`` merges numbered as rustbpe does (ids 0-255 = bytes, 256 + i =
    the i-th merge), in the form :func:`merges_from_ranks` gives for rustbpe's ranks."""
    tb = [bytes([i]) for i in range(256)]
    for a, b in merges:
        tb.append(tb[a] + tb[b])
    # a byte string made by two merges keeps the later id, as rustbpe's ranks read into a dict do
    return merges_from_ranks({t: i for i, t in enumerate(tb)})


def tokenizer_from_merges(merges: list[tuple[bytes, bytes]], specials: list[str]):
    """Our byte-level BPE ``tokenizers.Tokenizer`` from merges in learned order: ids are the special
    tokens, then the 256 bytes in byte order, then one id per merge."""
    from tokenizers import models

    b2u = byte_to_unicode()
    vocab = {t: i for i, t in enumerate(specials)}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    hf_merges = []
    for a, b in merges:
        ua, ub = "".join(b2u[x] for x in a), "".join(b2u[x] for x in b)
        hf_merges.append((ua, ub))
        vocab.setdefault(ua + ub, len(vocab))
    tok = new_tokenizer(models.BPE(vocab=vocab, merges=hf_merges, ignore_merges=True))
    tok.add_special_tokens(specials)
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
