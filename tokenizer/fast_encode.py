"""Encode text with a trained tokenizer: tiktoken speed, HF ``tokenizers`` ids.

HF ``tokenizers`` is the reference (``tokenizer.json``); :class:`Encoder` builds a ``tiktoken.Encoding``
from the same vocabulary, split regex and special tokens, with no download. ``backend="auto"`` checks
tiktoken against HF on a probe set plus any caller sample and falls back to HF, with a warning, on the
first difference. Document text is plain text (a literal ``<|endoftext|>`` is ordinary tokens), EOS is
added by the packer, and lone surrogates become U+FFFD. Why the two agree and the exact conventions:
docs/tokenizer.md, "Encoding".
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

# Small texts where a tokenizer implementation is likeliest to disagree with another one.
PROBE_TEXTS = [
    "Hello world! It's 2024; they'll've done it, DON'T you THINK? I'm sure we'd REALLY like it.",
    "  leading spaces\n\n\ttabs\r\nwindows lines   \n   trailing   ",
    "Numbers: 1 12 123 1234 12345 3.14159 1,000,000 0x1F 2^31-1 ١٢٣٤ 一二三",
    "Ünïcödé façade naïve coöperate Straße İstanbul ǅemal",
    "日本語のテキストと中文文本，還有한국어 텍스트。",
    "Русский текст, ελληνικά, עברית מימין לשמאל, العربية من اليمين إلى اليسار",
    "हिन्दी पाठ, தமிழ், ไทยภาษา, ქართული, Հայերեն",
    "emoji 👍🏽 👨‍👩‍👧‍👦 🇺🇳 ❤️ 🤖 ✨ and symbols ∑∫√ ≠ ≤ →",
    "code: def f(x):\n    return x**2  # comment\n\tif (a&&b) { y = a->b; }",
    "<|endoftext|> inside text, <html><body>tags</body></html> &amp; entities",
    "\x00\x01\x07 control \x1b[31m chars \u200b\u200d\ufeff zero width \u00a0nbsp",
    "'s 're 've 'll 'd 'm 't 'S 'RE ''''' ... !!! ??? --- ___ ***",
]


def _sanitize(text: str) -> str:
    """Replace lone surrogates by U+FFFD (joining valid surrogate pairs), as tiktoken does."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode table used by the ByteLevel pre-tokenizer."""
    from corpusmill.tokenizer.bpe import byte_to_unicode

    return {c: b for b, c in byte_to_unicode().items()}


class UnsupportedTokenizer(ValueError):
    """The tokenizer.json is not a byte-level BPE of the form tiktoken can reproduce."""


def tiktoken_encoding(tokenizer_json: str | Path, name: str = "corpusmill"):
    """A ``tiktoken.Encoding`` with the vocabulary, merges order and split regex of ``tokenizer_json``."""
    import tiktoken

    from corpusmill.tokenizer.bpe import SPLIT_PATTERN

    spec = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or spec.get("normalizer") or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix") or model.get("dropout") or model.get("byte_fallback"):
        raise UnsupportedTokenizer("not a plain byte-level BPE model")
    pre = spec.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    if len(steps) != 2 or steps[0].get("type") != "Split" or steps[1].get("type") != "ByteLevel":
        raise UnsupportedTokenizer("pre-tokenizer is not Split(regex) + ByteLevel")
    if steps[0].get("pattern", {}).get("Regex") != SPLIT_PATTERN or steps[0].get("behavior") != "Isolated" or steps[0].get("invert"):
        raise UnsupportedTokenizer("split pattern differs from SPLIT_PATTERN")
    if steps[1].get("use_regex") or steps[1].get("add_prefix_space"):
        raise UnsupportedTokenizer("ByteLevel pre-tokenizer must not split or add a prefix space")
    u2b = _unicode_to_byte()
    specials = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
    ranks = {}
    for token, idx in model["vocab"].items():
        if token in specials:
            continue
        try:
            ranks[bytes(u2b[c] for c in token)] = idx
        except KeyError:
            raise UnsupportedTokenizer(f"vocabulary entry {token!r} is not byte-level") from None
    if len(ranks) != len(set(ranks.values())):
        raise UnsupportedTokenizer("two vocabulary entries decode to the same bytes")
    if any(bytes([b]) not in ranks for b in range(256)):
        raise UnsupportedTokenizer("vocabulary lacks some of the 256 single bytes")
    # ids must order merges as HF does: every merge result's id above both of its parts' ids
    vocab = model["vocab"]
    for m in model.get("merges", []):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if not vocab[a + b] > max(vocab[a], vocab[b]):
            raise UnsupportedTokenizer("merge ranks are not in id order")
    return tiktoken.Encoding(name, pat_str=SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens=specials)


def hf_tokenizer(tokenizer_json: str | Path):
    """The reference ``tokenizers.Tokenizer``, with document text treated as plain text and no post-processing."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.encode_special_tokens = True
    tok.post_processor = None
    return tok


class Encoder:
    """Text -> token ids for a tokenizer directory (or tokenizer.json file).

    ``backend``: ``"auto"`` (tiktoken if it reproduces HF on the probe set and ``check_texts``, else HF),
    ``"tiktoken"`` (error if it cannot be built) or ``"hf"``.
    """

    def __init__(self, tokenizer: str | Path, backend: str = "auto", check_texts: list[str] | None = None):
        path = Path(tokenizer)
        self.tokenizer_json = path / "tokenizer.json" if path.is_dir() else path
        self.hf = hf_tokenizer(self.tokenizer_json)
        self.vocab_size = self.hf.get_vocab_size()
        self.eos_id = self.hf.token_to_id("<|endoftext|>")
        self.tt = None
        self.fallback_reason = None
        if backend not in ("auto", "tiktoken", "hf"):
            raise ValueError(f"unknown backend {backend!r}")
        if backend in ("auto", "tiktoken"):
            try:
                self.tt = tiktoken_encoding(self.tokenizer_json)
            except UnsupportedTokenizer as e:
                if backend == "tiktoken":
                    raise
                self.fallback_reason = str(e)
            if self.tt is not None and backend == "auto":
                bad = self.mismatches(PROBE_TEXTS + list(check_texts or []))
                if bad:
                    self.fallback_reason = f"tiktoken ids differ from HF on {len(bad)} probe text(s), e.g. {bad[0][:60]!r}"
                    self.tt = None
            if self.tt is None:
                log.warning("encoding with HF tokenizers (slower): %s", self.fallback_reason)
        self.backend = "tiktoken" if self.tt is not None else "hf"

    # -- encoding -----------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        text = _sanitize(text)
        if self.tt is not None:
            return self.tt.encode_ordinary(text)
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str], num_threads: int = 1) -> list[list[int]]:
        texts = [_sanitize(t) for t in texts]
        if self.tt is not None:
            if num_threads <= 1:
                enc = self.tt.encode_ordinary
                return [enc(t) for t in texts]
            return self.tt.encode_ordinary_batch(texts, num_threads=num_threads)
        return self.encode_batch_hf(texts)

    def encode_batch_hf(self, texts: list[str]) -> list[list[int]]:
        """The reference ids (HF tokenizers), whatever the backend."""
        return [e.ids for e in self.hf.encode_batch([_sanitize(t) for t in texts], add_special_tokens=False)]

    def decode(self, ids) -> str:
        return self.hf.decode([int(i) for i in ids], skip_special_tokens=False)

    def decode_bytes(self, ids) -> bytes:
        """Exact bytes of a token sequence (a window may cut a UTF-8 character in two)."""
        tt = self.tt
        if tt is None:  # HF backend: build tiktoken for decoding only (raises if not byte-level)
            tt = self._tt_decode = getattr(self, "_tt_decode", None) or tiktoken_encoding(self.tokenizer_json)
        return tt.decode_bytes([int(i) for i in ids])

    def mismatches(self, texts: list[str]) -> list[str]:
        """Texts on which the tiktoken path and HF give different ids (empty without tiktoken)."""
        if self.tt is None:
            return []
        # one text at a time: no tokenizers thread pool is started, so a later fork() is clean
        hf = self.hf
        return [t for t in texts if self.tt.encode_ordinary(_sanitize(t)) != hf.encode(_sanitize(t), add_special_tokens=False).ids]
