"""Toxicity scorers and filter, train-classifier, on the Davidson tweets (../shared/data/toxicity)."""

from __future__ import annotations

import json
import pickle
import statistics

import pytest

from corpusmill.curation.document import new_document
from corpusmill.curation.filters.toxicity import (
    FastTextScorer,
    Toxicity,
    WordListScorer,
    prepare_text,
    sidecar_path,
)
from corpusmill.curation.stage import apply_stage
from corpusmill.tools.toxicity_train import (
    TrainParams,
    binarise,
    classification_report,
    read_labelled,
    roc_auc,
    safe_params,
    split_rows,
)


@pytest.fixture(scope="session")
def davidson_csv(shared_data):
    return shared_data / "toxicity" / "davidson2017_labeled_data.csv"


@pytest.fixture(scope="session")
def davidson(davidson_csv):
    return read_labelled(davidson_csv, "tweet", "class")


def _doc(text):
    return new_document(text, "t.jsonl", 0)


# ---------------------------------------------------------------------------------------------------
# word list
# ---------------------------------------------------------------------------------------------------
def test_wordlist_scores_offensive_above_neither(davidson):
    w = WordListScorer()
    by_class = {c: [w.score(t) for t, lab in davidson if lab == c] for c in ("0", "1", "2")}
    hate, offensive, neither = (statistics.fmean(by_class[c]) for c in ("0", "1", "2"))
    print(f"\nwordlist mean score: hate {hate:.3f}, offensive {offensive:.3f}, neither {neither:.3f}")
    assert offensive > neither + 0.5
    assert hate > neither + 0.3


def test_wordlist_counts():
    w = WordListScorer()
    assert w.counts("What a lovely day") == (0, 4)
    assert w.score("What a lovely day") == 0.0
    assert w.counts("Fuck this") == (1, 2)
    assert w.counts("he got FUCKED up") == (1, 4)  # inflection of a listed term
    assert w.counts("two girls one cup is a meme") == (4, 7)  # multi-word term counted as its words
    assert w.counts("butter, spices and a cocker spaniel") == (0, 7)  # exceptions to the suffix rule
    assert w.counts("🖕") == (1, 1)
    assert WordListScorer(inflections=False).counts("he got fucked up") == (0, 4)


def test_wordlist_score_is_a_saturating_function_of_ratio():
    w = WordListScorer()
    assert w.score_counts(1, 100) == pytest.approx(0.5)
    assert w.score_counts(1, 1000) == pytest.approx(1 - 2**-0.1)
    assert w.score_counts(10, 10) == pytest.approx(1 - 2**-100)
    assert w.score_counts(0, 10) == 0.0
    long_page = "the cat sat on the mat " * 200 + "shit"  # 1 in 1201 words
    assert w.score(long_page) < 0.1
    assert WordListScorer(half_ratio=0.0005).score(long_page) > 0.5


def test_custom_wordlist(tmp_path):
    p = tmp_path / "list.txt"
    p.write_text("# comment\nfoo bar\nbaz\n", encoding="utf-8")
    w = WordListScorer(path=p)
    assert w.counts("Foo bar and BAZ") == (3, 4)


# ---------------------------------------------------------------------------------------------------
# filter
# ---------------------------------------------------------------------------------------------------
def test_filter_drops_and_tags():
    clean, dirty = "Have a nice day, friends.", "fuck you, you stupid bitch"
    f = Toxicity(scorer="wordlist")
    d = apply_stage(f, _doc(dirty))
    assert d.metadata["cm_status"] == "dropped"
    assert d.metadata["cm_stage"] == "toxicity" and d.metadata["cm_reason"] == "toxic"
    assert 0.5 <= d.metadata["toxicity"] <= 1.0
    assert d.metadata["signals"]["toxicity.score"] == d.metadata["toxicity"]
    d = apply_stage(f, _doc(clean))
    assert "cm_status" not in d.metadata and d.metadata["toxicity"] == 0.0

    tag = Toxicity(scorer="wordlist", action="tag")
    d = apply_stage(tag, _doc(dirty))
    assert "cm_status" not in d.metadata and d.metadata["toxicity"] > 0.5

    assert Toxicity(scorer="wordlist", threshold=1.01).filter(_doc(dirty)) is True
    with pytest.raises(ValueError):
        Toxicity(action="delete")
    with pytest.raises(ValueError):
        Toxicity(scorer="nope")


def test_filter_accepts_a_scorer_object():
    class Const:
        def setup(self):
            pass

        def score(self, text):
            return 0.7

    f = Toxicity(scorer=Const(), threshold=0.6)
    assert f.filter(_doc("x")) == (False, "toxic")


# ---------------------------------------------------------------------------------------------------
# train-classifier
# ---------------------------------------------------------------------------------------------------
def test_split_is_deterministic_and_stratified(davidson):
    rows = binarise(davidson, ["0", "1"])
    tr1, te1 = split_rows(rows, 0.2, seed=0)
    tr2, te2 = split_rows(rows, 0.2, seed=0)
    assert te1 == te2 and tr1 == tr2
    assert len(tr1) + len(te1) == len(rows)
    share = lambda rs: sum(lab == "positive" for _, lab in rs) / len(rs)  # noqa: E731
    assert abs(share(te1) - share(rows)) < 0.001
    assert split_rows(rows, 0.2, seed=1)[1] != te1


def test_read_jsonl_and_csv(tmp_path):
    j = tmp_path / "d.jsonl"
    j.write_text('{"text": "a b", "y": 1}\n\n{"text": "", "y": 0}\n{"text": "c", "y": 0}\n')
    assert read_labelled(j, "text", "y") == [("a b", "1"), ("c", "0")]
    c = tmp_path / "d.csv"
    c.write_text('t,y\n"x, y",pos\nz,neg\n')
    assert read_labelled(c, "t", "y") == [("x, y", "pos"), ("z", "neg")]
    with pytest.raises(ValueError, match="no column"):
        read_labelled(c, "text", "y")


def test_nan_workaround():
    assert safe_params(TrainParams(wordNgrams=1, thread=2)).thread == 10
    assert safe_params(TrainParams(wordNgrams=2, thread=2)).thread == 2
    assert safe_params(TrainParams(wordNgrams=1, maxn=5, minn=2, thread=2)).thread == 2


def test_metrics_helpers():
    r = classification_report(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert r["accuracy"] == 0.75
    assert r["per_label"]["a"]["precision"] == 1.0 and r["per_label"]["a"]["recall"] == 0.5
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert roc_auc([0.5, 0.5], [False, True]) == 0.5


@pytest.fixture(scope="module")
def trained(davidson_csv, tmp_path_factory):
    """train-classifier through the CLI on a deterministic 8,000-tweet sample (hate/offensive = toxic)."""
    from corpusmill.cli import main

    out = tmp_path_factory.mktemp("tox") / "toxic.bin"
    rc = main(
        [
            "train-classifier",
            "--input", str(davidson_csv),
            "--text-field", "tweet",
            "--label-field", "class",
            "--positive", "0,1",
            "--limit", "8000",
            "--thread", "1",  # deterministic; word bigrams keep fastText clear of its NaN bug
            "--out", str(out),
        ]
    )  # fmt: skip
    assert rc == 0
    return out


def test_train_classifier_reaches_f1(trained):
    m = json.loads(sidecar_path(trained).read_text())
    print(
        f"\ntrain-classifier (8000 tweets, 20% held out): toxic P {m['precision']:.3f} R {m['recall']:.3f} "
        f"F1 {m['f1']:.3f}; 'neither' F1 {m['per_label']['negative']['f1']:.3f}; macro-F1 {m['macro_f1']:.3f}; "
        f"{m['seconds']} s"
    )
    assert m["test_rows"] == 1600 and m["train_rows"] == 6400
    # majority baseline (everything toxic) has toxic F1 0.91 and 'neither' F1 0
    assert m["f1"] >= 0.94
    assert m["per_label"]["negative"]["f1"] >= 0.70
    assert m["macro_f1"] >= 0.83
    assert m["positive_label"] == "positive" and m["preprocessing"]["lowercase"] is True


def test_fasttext_scorer_and_pickle(trained):
    f = Toxicity(scorer="fasttext", model_path=trained)
    f.setup()
    hi = f.scorer.score("@user you stupid bitch, shut up hoe")
    lo = f.scorer.score("Looking forward to the game tonight with my family!")
    assert 0.0 <= lo < 0.5 <= hi <= 1.0
    d = apply_stage(f, _doc("@user you stupid bitch,\nshut up hoe"))
    assert d.metadata["cm_reason"] == "toxic" and d.metadata["signals"]["toxicity.score"] >= 0.5

    blob = pickle.dumps(f)
    assert len(blob) < 5_000  # the 25 MB model is not in it
    g = pickle.loads(blob)
    assert g.scorer._model is None
    assert g.scorer.score("you stupid bitch") == pytest.approx(f.scorer.score("you stupid bitch"))

    with pytest.raises(ValueError, match="positive labels"):
        FastTextScorer(trained, positive_labels=["toxic"]).setup()


def test_wordlist_toxicity_pickles():
    f = Toxicity(scorer="wordlist")
    f.setup()
    assert f.scorer._single
    g = pickle.loads(pickle.dumps(f))
    assert g.scorer._single is None
    assert g.filter(_doc("fuck fuck")) == (False, "toxic")


def test_prepare_text():
    assert prepare_text("Hello,\nWORLD!!") == "hello , world ! !"
    assert prepare_text("Hello,\nWORLD", lowercase=False, split_punct=False) == "Hello, WORLD"
    # wiki talk markup (as in the Wikipedia Toxicity comments) is removed when the model was trained so
    wiki = "`== Vandalism ==  Stop it. ``Quoted`` NEWLINE;_TOKEN ok`"
    assert prepare_text(wiki, wiki=True) == 'vandalism stop it . " quoted " ok'
    assert "=" in prepare_text(wiki) and "newline" in prepare_text(wiki)


def test_profanity_check_scorer():
    pytest.importorskip("profanity_check")
    f = Toxicity(scorer="profanity_check")
    f.setup()
    assert f.scorer.score("fuck you, you piece of shit") > 0.5 > f.scorer.score("What a lovely afternoon.")
    g = pickle.loads(pickle.dumps(f))
    assert g.scorer._predict is None
    assert g.filter(_doc("fuck you, you piece of shit")) == (False, "toxic")
