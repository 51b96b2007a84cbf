"""Toxicity scoring and filtering with pluggable scorers (docs/toxicity.md).

``Toxicity`` sets ``metadata["toxicity"]`` (a score in [0, 1]) and the signal ``toxicity.score`` on every
scored document; ``action="drop"`` drops documents at or above ``threshold`` (reason ``toxic``),
``action="tag"`` only records the score. It scores batches through the scorer's ``score_many``.

Scorers (``setup()``, ``score(text)``, ``score_many(texts)``; they pickle without their loaded state):
``"fasttext"`` (:class:`FastTextScorer`; without ``model_path`` the shipped calibrated model, the default),
``"wordlist"`` (:class:`WordListScorer`, the LDNOOBW list), ``"profanity_check"``
(:class:`ProfanityCheckScorer`, optional extra), or any object with ``score(text)``.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from datatrove.data import Document

from corpusmill.curation.stage import Filter
from corpusmill.curation.text.languages import language_set

_WS = re.compile(r"\s+")
# words (keeping s&m, g-spot, don't together) and single symbols (emoji such as the middle finger)
_TOKEN = re.compile(r"\w+(?:[&'’-]\w+)*|[^\w\s]")
_PUNCT_SPLIT = re.compile(r"\w+|[^\w\s]")
_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
# wiki talk-page markup: NEWLINE_TOKEN remnants of the Wikipedia Talk exports, ``quotes``, == headings ==
_WIKI = ((re.compile(r"NEWLINE;?_TOKEN"), " "), (re.compile(r"``|''"), ' " '), (re.compile(r"={2,}|`"), " "))


class Scorer(Protocol):
    def setup(self) -> None: ...

    def score(self, text: str) -> float: ...


# --------------------------------------------------------------------------------------------------
# word list
# --------------------------------------------------------------------------------------------------
def read_wordlist(path: str | os.PathLike) -> list[str]:
    """One term per line; blank lines and lines starting with ``#`` are skipped; lower-cased."""
    terms = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            t = line.strip()
            if t and not t.startswith("#"):
                terms.append(t.lower())
    return terms


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class WordListScorer:
    """Score = ``1 - 2 ** (-r / half_ratio)`` with r = words covered by listed terms / words.

    Args:
        path: one-term-per-line list; ``None`` = the packaged LDNOOBW English list.
        half_ratio: bad-word ratio that scores 0.5 (default 0.01: one listed word per 100 words). A tweet
            of 15 words with one match scores 0.99; a 1,000-word page with one match 0.07, with ten 0.5.
        inflections: also match a word whose plural / -ed / -ing / -er form strips to a listed term
            (``fucked`` -> ``fuck``, ``niggas`` -> ``nigga``); the LDNOOBW list has few inflected forms.
            A short exception list keeps ``butter``, ``spices``, ``cocker`` ... out.
    """

    name = "wordlist"
    SUFFIXES = ("s", "es", "ed", "ing", "er", "ers")
    # ordinary words that a suffix strips to a listed term (seen in the shared web and tweet samples)
    NOT_INFLECTIONS = frozenset(
        "butter butters buttered buttering cocker cockers spiced spices spicer titer titers "
        "snatched snatching snatcher snatchers sexes sexed".split()
    )

    def __init__(self, path: str | os.PathLike | None = None, half_ratio: float = 0.01, inflections: bool = True):
        self.path = str(path) if path is not None else None
        self.half_ratio = float(half_ratio)
        self.inflections = inflections
        self._single: frozenset[str] | None = None
        self._phrases: dict[str, set[tuple[str, ...]]] | None = None
        self._max_len = 1

    def setup(self) -> None:
        if self._single is not None:
            return
        if self.path is None:
            from corpusmill.curation.assets import wordlist_path

            path = wordlist_path("en")
        else:
            path = Path(self.path)
        single, phrases = set(), {}
        max_len = 1
        for term in read_wordlist(path):
            toks = tuple(tokenize(term))
            if not toks:
                continue
            if len(toks) == 1:
                single.add(toks[0])
            else:
                phrases.setdefault(toks[0], set()).add(toks)
                max_len = max(max_len, len(toks))
        self._single, self._phrases, self._max_len = frozenset(single), phrases, max_len

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_single"] = state["_phrases"] = None
        return state

    def _is_listed(self, tok: str) -> bool:
        single = self._single
        if tok in single:
            return True
        if self.inflections and len(tok) > 3 and tok not in self.NOT_INFLECTIONS:
            for suf in self.SUFFIXES:
                if tok.endswith(suf) and tok[: -len(suf)] in single:
                    return True
        return False

    def counts(self, text: str) -> tuple[int, int]:
        """(words covered by listed terms, words)."""
        if self._single is None:
            self.setup()
        toks = tokenize(text)
        n = len(toks)
        hit = 0
        i = 0
        phrases = self._phrases
        while i < n:
            tok = toks[i]
            matched = 0
            starts = phrases.get(tok)
            if starts:
                for ph in starts:  # longest phrase wins
                    L = len(ph)
                    if L > matched and tuple(toks[i : i + L]) == ph:
                        matched = L
            if not matched and self._is_listed(tok):
                matched = 1
            if matched:
                hit += matched
                i += matched
            else:
                i += 1
        return hit, n

    def score_counts(self, hit: int, n: int) -> float:
        if hit == 0 or n == 0:
            return 0.0
        return 1.0 - 2.0 ** (-(hit / n) / self.half_ratio)

    def score(self, text: str) -> float:
        return self.score_counts(*self.counts(text))

    def score_many(self, texts: list[str]) -> list[float]:
        return [self.score(t) for t in texts]


# --------------------------------------------------------------------------------------------------
# fastText classifier
# --------------------------------------------------------------------------------------------------
def prepare_text(
    text: str,
    *,
    lowercase: bool = True,
    split_punct: bool = True,
    max_chars: int | None = None,
    mask: bool = False,
    wiki: bool = False,
) -> str:
    """The text normalisation used both to train (``corpusmill train-classifier``) and to score: first
    ``max_chars`` characters, (``wiki``: wiki markup ``== x ==``, ````x````, NEWLINE_TOKEN remnants removed),
    (``mask``: HTML entities decoded, URLs -> ``xurl``, @mentions -> ``xuser``), lower-cased, punctuation
    split from words, one line."""
    if max_chars:
        text = text[:max_chars]
    if wiki:
        for rx, rep in _WIKI:
            text = rx.sub(rep, text)
    if mask:
        text = _MENTION.sub(" xuser ", _URL.sub(" xurl ", html.unescape(text)))
    if lowercase:
        text = text.lower()
    if split_punct:
        return " ".join(_PUNCT_SPLIT.findall(text))
    return _WS.sub(" ", text).strip()


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """``model.bin`` -> ``model.metrics.json`` (written by train-classifier: metrics + preprocessing)."""
    p = Path(model_path)
    return p.with_name(p.stem + ".metrics.json")


#: the shipped default model (``corpusmill train-toxicity``; docs/toxicity.md)
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "data" / "toxicity_fasttext.ftz"


def read_sidecar(model_path: str | os.PathLike) -> dict[str, Any]:
    if "://" in str(model_path):  # a staged / remote model: its local copy has the sidecar beside it
        from corpusmill.curation.assets import localize

        model_path = localize(model_path)
    sc = sidecar_path(model_path)
    return json.loads(sc.read_text()) if sc.is_file() else {}


class FastTextScorer:
    """P(positive labels) from a fastText supervised classifier, calibrated when its sidecar says how.

    Args:
        model_path: the ``.bin`` / ``.ftz`` model; ``None`` = the shipped default model (trained on the
            shared labelled sets, calibrated: its ``.metrics.json`` holds a logistic map from the fastText
            logit, the logit of the hashed n-gram model beside it and the word-list score to P(toxic),
            and the recommended threshold).
        positive_labels: labels (with or without ``__label__``) whose probabilities are summed. Default: the
            ``positive_label`` recorded by train-classifier next to the model, else ``("toxic",
            "positive")`` (dolma's Jigsaw models use ``toxic`` / ``non_toxic``).
        lowercase / split_punct: text preprocessing; default from the model's ``.metrics.json`` sidecar
            when present (what it was trained with), else both on.
        max_chars: score only the first this-many characters.
    """

    name = "fasttext"

    def __init__(
        self,
        model_path: str | os.PathLike,
        positive_labels: Iterable[str] | str | None = None,
        lowercase: bool | None = None,
        split_punct: bool | None = None,
        max_chars: int | None = 20_000,
    ):
        self.model_path = str(model_path if model_path is not None else DEFAULT_MODEL)
        self.positive_labels = [positive_labels] if isinstance(positive_labels, str) else positive_labels
        self.lowercase = lowercase
        self.split_punct = split_punct
        self.max_chars = max_chars
        self.mask = False
        self.wiki = False
        self._model = None
        self._positive: frozenset[str] | None = None
        self._calibration: dict[str, Any] | None = None
        self._words: WordListScorer | None = None
        self._linear = None

    def model_languages(self) -> list[str] | None:
        """The languages recorded with the model (the shipped one: en, de, pt), else None."""
        return read_sidecar(self.model_path).get("languages")

    def recommended_threshold(self) -> float | None:
        """The threshold recorded with the model (the shipped one: derived on its dev rows)."""
        t = read_sidecar(self.model_path).get("threshold")
        return float(t) if t is not None else None

    def setup(self) -> None:
        if self._model is not None:
            return
        from corpusmill.curation.assets import localize

        self.model_path = str(localize(self.model_path))  # gs:// etc. -> a cached local copy
        if not Path(self.model_path).is_file():
            raise FileNotFoundError(f"fastText toxicity model not found: {self.model_path}")
        side = read_sidecar(self.model_path)
        meta = dict(side.get("preprocessing") or {})
        meta["positive_label"] = side.get("positive_label")
        self.mask = bool(meta.get("mask", False))
        self.wiki = bool(meta.get("wiki", False))
        if meta.get("max_chars") and self.max_chars and self.max_chars > meta["max_chars"]:
            self.max_chars = int(meta["max_chars"])
        self._calibration = side.get("calibration")
        if side.get("linear_model"):  # the hashed n-gram model next to it (a calibration input)
            from corpusmill.curation.filters.toxicity_linear import HashedLinear

            self._linear = HashedLinear.load(Path(self.model_path).parent / side["linear_model"])
        if self._calibration and {"wordlist", "wordlist_hits"} & set(self._calibration["features"]):
            self._words = WordListScorer()
            self._words.setup()
        if self.lowercase is None:
            self.lowercase = bool(meta.get("lowercase", True))
        if self.split_punct is None:
            self.split_punct = bool(meta.get("split_punct", True))
        labels = self.positive_labels
        if labels is None:
            labels = [meta["positive_label"]] if meta.get("positive_label") else ["toxic", "positive"]
        self._positive = frozenset("__label__" + lab.removeprefix("__label__") for lab in labels)

        from corpusmill.curation.filters.language import load_fasttext_model

        self._model = load_fasttext_model(self.model_path)
        known = set(self._model.get_labels())
        if not self._positive & known:
            raise ValueError(
                f"none of the positive labels {sorted(self._positive)} is a label of {self.model_path} "
                f"({sorted(known)}); pass positive_labels"
            )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = state["_words"] = state["_linear"] = None
        return state

    def score(self, text: str) -> float:
        return self.score_many([text])[0]

    def _prepare(self, text: str) -> str:
        return prepare_text(
            text, lowercase=self.lowercase, split_punct=self.split_punct, max_chars=self.max_chars, mask=self.mask,
            wiki=self.wiki,
        )

    def _probs(self, prepared: list[str]) -> list[float]:
        """P(positive labels) of non-empty prepared texts, one ``predict`` call (fastText loops in C++)."""
        if not prepared:
            return []
        all_labels, all_probs = self._model.predict(prepared, k=-1)
        return [
            min(1.0, max(0.0, sum(float(pr) for lab, pr in zip(labels, probs) if lab in self._positive)))
            for labels, probs in zip(all_labels, all_probs)
        ]

    def score_many(self, texts: list[str]) -> list[float]:
        if self._model is None:
            self.setup()
        cal = self._calibration
        if not cal:
            prepared = [self._prepare(t) for t in texts]
            nonempty = [i for i, t in enumerate(prepared) if t]
            out = [0.0] * len(texts)
            for i, p in zip(nonempty, self._probs([prepared[i] for i in nonempty])):
                out[i] = p
            return out
        out = []
        for f in self.feature_rows(texts, cal["features"], int(cal.get("window", 0))):
            z = cal["intercept"] + sum(c * f[name] for c, name in zip(cal["coef"], cal["features"])) if f else -1e9
            out.append(1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0)
        return out

    def feature_rows(self, texts: list[str], names: Iterable[str], window: int = 0) -> list[dict[str, float] | None]:
        """The calibration's inputs per text (None for a text without words): ``fasttext_logit`` (whole
        text), ``fasttext_max_logit`` (the most toxic of the half-overlapping windows of ``window`` tokens;
        a shorter text is its own window), ``linear_logit`` (the hashed n-gram model the sidecar names,
        :mod:`~corpusmill.curation.filters.toxicity_linear`), ``wordlist`` (the word-list score),
        ``wordlist_hits`` (log(1 + listed words))."""
        if self._model is None:
            self.setup()
        names = set(names)
        prepared = [self._prepare(t) for t in texts]
        nonempty = [i for i, t in enumerate(prepared) if t]
        rows: list[dict[str, float] | None] = [None] * len(texts)
        for i, p in zip(nonempty, self._probs([prepared[i] for i in nonempty])):
            rows[i] = {"fasttext_logit": _logit(p)}
        if "fasttext_max_logit" in names:
            windows, owner = [], []
            for i in nonempty:
                rows[i]["fasttext_max_logit"] = rows[i]["fasttext_logit"]
                toks = prepared[i].split()
                if window and len(toks) > window:
                    for start in range(0, len(toks) - window // 2, window // 2):
                        windows.append(" ".join(toks[start : start + window]))
                        owner.append(i)
            for i, p in zip(owner, self._probs(windows)):
                rows[i]["fasttext_max_logit"] = max(rows[i]["fasttext_max_logit"], _logit(p))
        if "linear_logit" in names:
            for i, z in zip(nonempty, self._linear.margin([prepared[i] for i in nonempty])):
                rows[i]["linear_logit"] = z
        if names & {"wordlist", "wordlist_hits"}:
            if self._words is None:
                self._words = WordListScorer()
                self._words.setup()
            for i in nonempty:
                t = texts[i][: self.max_chars] if self.max_chars else texts[i]
                hit, n = self._words.counts(t)
                rows[i]["wordlist"] = self._words.score_counts(hit, n)
                rows[i]["wordlist_hits"] = math.log1p(hit)
        return rows


def _logit(p: float) -> float:
    p = min(max(p, 1e-5), 1 - 1e-5)
    return math.log(p / (1 - p))


# --------------------------------------------------------------------------------------------------
# alt-profanity-check
# --------------------------------------------------------------------------------------------------
class ProfanityCheckScorer:
    """alt-profanity-check's probability (linear SVM on TF-IDF, MIT). Needs the optional packages
    ``alt-profanity-check==1.9.1`` and ``scikit-learn==1.9.1`` (the pickled model needs that exact version).
    Trained partly on the Davidson tweets: do not evaluate it on them."""

    name = "profanity_check"

    def __init__(self, max_chars: int | None = 20_000):
        self.max_chars = max_chars
        self._predict = None

    def setup(self) -> None:
        if self._predict is None:
            try:
                from profanity_check import predict_prob
            except ImportError as e:
                raise ImportError(
                    "scorer 'profanity_check' needs `pip install alt-profanity-check==1.9.1 scikit-learn==1.9.1` "
                    "(or `pip install corpusmill[toxicity]`)"
                ) from e
            self._predict = predict_prob

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_predict"] = None
        return state

    def score(self, text: str) -> float:
        return self.score_many([text])[0]

    def score_many(self, texts: list[str]) -> list[float]:
        if self._predict is None:
            self.setup()
        if self.max_chars:
            texts = [t[: self.max_chars] for t in texts]
        return [float(x) for x in self._predict(texts)]


SCORERS = {"wordlist": WordListScorer, "fasttext": FastTextScorer, "profanity_check": ProfanityCheckScorer}


def make_scorer(scorer: str | Scorer = "fasttext", **kwargs: Any) -> Scorer:
    if not isinstance(scorer, str):
        return scorer
    try:
        cls = SCORERS[scorer]
    except KeyError:
        raise ValueError(f"unknown toxicity scorer {scorer!r}; choose one of {sorted(SCORERS)}") from None
    return cls(**kwargs)


class Toxicity(Filter):
    """Score toxicity; drop (``action="drop"``) or only tag (``action="tag"``) documents.

    Args:
        scorer: ``"fasttext"`` (default: the shipped calibrated model, or your ``model_path``),
            ``"wordlist"``, ``"profanity_check"``, or a scorer object with ``score(text)``.
        threshold: drop when score >= threshold; default: the threshold recorded with the model (the
            shipped model's, derived on held-out rows), else 0.5.
        action: ``"drop"`` or ``"tag"``.
        model_path / positive_labels: for the fasttext scorer.
        wordlist_path / half_ratio: for the wordlist scorer.
        batch_size: documents per scorer call when the scorer has ``score_many`` (engines batch them).
        languages: documents scored; ``"model"`` (default): the languages the model records (the shipped
            model: en, de, pt; others pass unscored), every document for scorers without; ``"all"`` / a list.
        scorer_kwargs: any other scorer argument.
    """

    name = "toxicity"
    THRESHOLDS = {"score": [("max", "threshold")]}

    def __init__(
        self,
        scorer: str | Scorer = "fasttext",
        threshold: float | None = None,
        action: str = "drop",
        model_path: str | os.PathLike | None = None,
        positive_labels: Iterable[str] | str | None = None,
        wordlist_path: str | os.PathLike | None = None,
        half_ratio: float | None = None,
        batch_size: int = 256,
        languages: Iterable[str] | str | None = "model",
        **scorer_kwargs: Any,
    ):
        if action not in ("drop", "tag"):
            raise ValueError(f"action must be 'drop' or 'tag', not {action!r}")
        kwargs = dict(scorer_kwargs)
        if scorer == "fasttext":
            kwargs.update(model_path=model_path, positive_labels=positive_labels)
        elif scorer == "wordlist":
            kwargs["path"] = wordlist_path
            if half_ratio is not None:
                kwargs["half_ratio"] = half_ratio
        self.scorer = make_scorer(scorer, **kwargs)
        if threshold is None:
            rec = getattr(self.scorer, "recommended_threshold", None)
            threshold = (rec() if rec else None) or 0.5
        self.threshold = float(threshold)
        self.action = action
        if languages == "model":
            rec = getattr(self.scorer, "model_languages", None)
            languages = rec() if rec else None
        self.languages = language_set(None if languages == "all" else languages)
        # engines hand over this many documents per filter_batch call when the scorer scores lists
        self.batch_size = max(1, int(batch_size)) if hasattr(self.scorer, "score_many") else 1

    def setup(self) -> None:
        self.scorer.setup()

    def _verdict(self, doc: Document, s: float) -> bool | tuple[bool, str]:
        s = float(s)
        doc.metadata["toxicity"] = s
        self.signals(doc)["score"] = s
        if self.action == "drop" and s >= self.threshold:
            return False, "toxic"
        return True

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self._verdict(doc, self.scorer.score(doc.text))

    def filter_batch(self, docs: list[Document]) -> list[Any]:
        if not hasattr(self.scorer, "score_many"):
            return [self.filter(d) for d in docs]
        scores = self.scorer.score_many([d.text for d in docs])  # all scores first: no document changed if it raises
        return [self._verdict(d, s) for d, s in zip(docs, scores)]
