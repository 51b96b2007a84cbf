"""Subword tokens per word, within per-language bounds (OURS: no published recipe uses it).

Garbled text, base64, long digit strings and glued words cost many tokens per word; text made of a
few very frequent short words costs about one. The bounds are per-language percentiles derived by
``python -m corpusmill.tools.derive_token_ratio`` into ``curation/data/token_ratio_thresholds.json``;
thresholds derived for another tokenizer are refused (sha256 check) unless
``allow_tokenizer_mismatch=True``. Closest published rule, method, data and shipped bounds:
docs/filters.md, "TokenToWordRatio".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from datatrove.data import Document

from corpusmill.curation.text.doc_stats import get_stats
from corpusmill.curation.text.languages import language_set, normalize_language
from corpusmill.curation.stage import Filter

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEFAULT_THRESHOLDS = DATA_DIR / "token_ratio_thresholds.json"
DEFAULT_TOKENIZER = DATA_DIR / "token_ratio_tokenizer.json"


class TokenToWordRatio(Filter):
    """Drop documents whose tokens-per-word ratio lies outside their language's ``[low, high]``.

    - ratio = ``len(tokenizer.encode(text, add_special_tokens=False).ids)`` / words, where words are
      the shared split of :mod:`corpusmill.curation.text` (spaCy-equivalent for English, the generic
      regex split otherwise: the same split the thresholds were derived with).
    - reasons ``token_ratio_low`` / ``token_ratio_high``.
    - documents with fewer than ``min_words`` words (default 50, like the derivation) pass: the ratio of
      a few words says little. Their signals are recorded.
    - language: ``metadata["language"]`` normalised to ISO 639-1, ``default_language`` ("en") when
      missing. A language without thresholds passes (``unknown_language="keep"``) or is dropped with
      ``token_ratio_no_thresholds`` (``"drop"``).

    ``thresholds``: path of a JSON written by the derivation script, or a mapping
    ``{language: {"low": x, "high": y}}`` (then no tokenizer check). ``tokenizer_path``: a HF
    ``tokenizer.json``; default: the JSON's tokenizer path (the shipped throwaway BPE).

    Signals (``token_ratio.*``): ``tokens_per_word``, ``tokens``, ``words`` (``tokens_per_word`` is 0
    for a document without words).
    """

    name = "token_ratio"

    def __init__(
        self,
        tokenizer_path: str | Path | None = None,
        thresholds: str | Path | Mapping[str, Mapping[str, float]] | None = None,
        min_words: int = 50,
        default_language: str = "en",
        unknown_language: str = "keep",
        allow_tokenizer_mismatch: bool = False,
        languages: Iterable[str] | str | None = None,
    ):
        if unknown_language not in ("keep", "drop"):
            raise ValueError("unknown_language must be 'keep' or 'drop'")
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else None
        self.thresholds_source = thresholds if thresholds is not None else DEFAULT_THRESHOLDS
        self.min_words = min_words
        self.default_language = normalize_language(default_language) or "en"
        self.unknown_language = unknown_language
        self.allow_tokenizer_mismatch = allow_tokenizer_mismatch
        self.languages = language_set(languages)
        self._tokenizer = None
        self._bounds: dict[str, tuple[float, float]] | None = None

    # -- loading --------------------------------------------------------------------------------
    def setup(self) -> None:
        if self._tokenizer is not None:
            return
        from tokenizers import Tokenizer

        src = self.thresholds_source
        meta: dict[str, Any] = {}
        if isinstance(src, Mapping):
            table = src
        else:
            meta = json.loads(Path(src).read_text(encoding="utf-8"))
            table = meta["languages"]
        self._bounds = {
            normalize_language(k): (float(v["low"]), float(v["high"])) for k, v in table.items()
        }
        path = self.tokenizer_path
        if path is None:
            recorded = (meta.get("tokenizer") or {}).get("path")
            if recorded is None:
                path = DEFAULT_TOKENIZER
            else:
                path = Path(recorded)
                if not path.is_absolute():  # recorded beside the thresholds file (relative to where it was derived)
                    path = Path(src).parent / path.name
        expected = (meta.get("tokenizer") or {}).get("sha256")
        if expected and not self.allow_tokenizer_mismatch:
            actual = file_sha256(path)
            if actual != expected:
                raise ValueError(
                    f"token-ratio thresholds {src} were derived with tokenizer sha256 {expected[:12]}..., "
                    f"not {path} ({actual[:12]}...): re-derive them with "
                    f"`python -m corpusmill.tools.derive_token_ratio --tokenizer {path} --out NEW.json`"
                )
        self._tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer_path = path

    def bounds(self, language: str) -> tuple[float, float] | None:
        self.setup()
        return self._bounds.get(language)

    # -- filtering ------------------------------------------------------------------------------
    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        self.setup()
        st = get_stats(doc)
        n_words = len(st.words)
        n_tokens = len(self._tokenizer.encode(st.text, add_special_tokens=False).ids) if st.text else 0
        ratio = n_tokens / n_words if n_words else 0.0
        s = self.signals(doc)
        s["tokens_per_word"] = ratio
        s["tokens"] = n_tokens
        s["words"] = n_words
        if n_words < self.min_words:
            return True
        lang = normalize_language(doc.metadata.get("language")) or self.default_language
        b = self._bounds.get(lang)
        if b is None:
            if self.unknown_language == "drop":
                return False, "token_ratio_no_thresholds"
            return True
        if ratio < b[0]:
            return False, "token_ratio_low"
        if ratio > b[1]:
            return False, "token_ratio_high"
        return True


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
