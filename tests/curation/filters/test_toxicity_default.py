"""The shipped default toxicity model on the test split of every shared labelled set, side by side with
alt-profanity-check; the split rules of ../shared/data/toxicity/PROVENANCE.md."""

from __future__ import annotations

import json
import pickle

import pytest

from corpusmill.curation.document import new_document
from corpusmill.curation.filters.toxicity import DEFAULT_MODEL, FastTextScorer, Toxicity, sidecar_path
from corpusmill.curation.stage import apply_stage
from corpusmill.tools.toxicity_default import DEFAULT_FEATURES, binary_metrics, fit_logistic
from corpusmill.tools.toxicity_sets import SETS, load_set


@pytest.fixture(scope="module")
def sets(shared_data):
    return {name: load_set(name, shared_data / "toxicity") for name in SETS}


def test_split_rules_match_provenance(sets):
    def count(name, split, toxic=None):
        return sum(r.split == split and (toxic is None or r.toxic == toxic) for r in sets[name])

    # the counts PROVENANCE.md states for each set's test split
    assert (count("told_br", "test", True), count("told_br", "test", False)) == (1865, 2411)
    assert (count("wikitox", "test"), count("wikitox", "test", True)) == (280, 51)
    assert (count("hatecheck", "test", True), count("hatecheck", "test", False)) == (605, 255)
    assert (count("germeval", "test"), count("germeval", "test", True)) == (3532, 1202)
    assert count("germeval", "train") + count("germeval", "dev") == 5009
    assert count("davidson", "test") + count("davidson", "train") + count("davidson", "dev") == 24783
    for name, rows in sets.items():
        test = {r.text for r in rows if r.split == "test"}
        if name != "hatecheck":  # HateCheck splits by template: the same sentence may come from two templates
            assert not test & {r.text for r in rows if r.split != "test"}, name
    assert len(sets["hatecheck"]) == 3728


def test_shipped_model_is_small_calibrated_and_has_its_recipe():
    linear = DEFAULT_MODEL.with_name(DEFAULT_MODEL.stem + ".linear.npz")
    assert DEFAULT_MODEL.is_file() and DEFAULT_MODEL.stat().st_size + linear.stat().st_size < 5_000_000
    side = json.loads(sidecar_path(DEFAULT_MODEL).read_text())
    assert side["calibration"]["features"] == DEFAULT_FEATURES == ["fasttext_logit", "linear_logit", "wordlist"]
    assert side["linear_model"] == linear.name
    assert 0.0 < side["threshold"] < 1.0
    assert set(side["dev_metrics"]) == set(SETS)
    t = Toxicity()
    assert t.scorer.model_path == str(DEFAULT_MODEL) and t.threshold == side["threshold"] and t.batch_size > 1


def test_default_toxicity_scores_and_pickles():
    f = Toxicity()
    f.setup()
    hi = f.scorer.score("fuck you, you stupid piece of shit")
    lo = f.scorer.score("Looking forward to the game tonight with my family!")
    assert 0.0 <= lo < f.threshold <= hi <= 1.0
    d = apply_stage(f, new_document("you are a worthless idiot, fuck off", "t.jsonl", 0))
    assert d.metadata["cm_reason"] == "toxic"
    blob = pickle.dumps(f)
    assert len(blob) < 5_000
    g = pickle.loads(blob)
    assert g.scorer._model is None
    assert g.scorer.score("you stupid bitch") == pytest.approx(f.scorer.score("you stupid bitch"))
    assert FastTextScorer(None).score_many(["", "   ", "ok"])[:2] == [0.0, 0.0]  # no words: 0


def test_default_beats_profanity_check_where_it_was_not_trained(sets):
    pytest.importorskip("profanity_check")
    from profanity_check import predict_prob

    default = FastTextScorer(None)
    thr = default.recommended_threshold()
    report = {}
    for name, rows in sets.items():
        test = [r for r in rows if r.split == "test"]
        texts, y = [r.text for r in test], [r.toxic for r in test]
        ours = binary_metrics(default.score_many(texts), y, thr)
        theirs = binary_metrics([float(p) for p in predict_prob(texts)], y, 0.5)
        report[name] = (round(ours["f1"], 3), round(theirs["f1"], 3))
        assert all(0.0 <= s <= 1.0 for s in default.score_many(texts[:50]))
    print("\nF1 default vs profanity-check on the test splits:", report)
    # German and Portuguese tweets, HateCheck: profanity-check was not trained on them
    for name in ("germeval", "told_br", "hatecheck"):
        assert report[name][0] > report[name][1] + 0.2, (name, report[name])
    # Davidson was profanity-check's training data; ours stays close to it there
    assert report["davidson"][0] > 0.93
    # WikiTox: below profanity-check (0.750 vs 0.826), which was trained on Wikipedia talk comments of the
    # same corpus, possibly these (docs/toxicity.md); this guards against a regression of ours
    assert report["wikitox"][0] > 0.72


def test_fit_logistic_recovers_a_known_map():
    import random

    rng = random.Random(0)
    xs, ys = [], []
    for _ in range(4000):
        a, b = rng.uniform(-4, 4), rng.random()
        p = 1 / (1 + pow(2.718281828459045, -(0.8 * a + 2.0 * b - 1.0)))
        xs.append([a, b])
        ys.append(rng.random() < p)
    coef, intercept = fit_logistic(xs, ys, l2=0.0)
    assert coef[0] == pytest.approx(0.8, abs=0.1) and coef[1] == pytest.approx(2.0, abs=0.3)
    assert intercept == pytest.approx(-1.0, abs=0.2)
    # weights: a row of weight 2 counts as two rows of weight 1
    w2 = fit_logistic(xs[:1000] + xs[:1000] + xs[1000:], ys[:1000] + ys[:1000] + ys[1000:], l2=0.0)
    ww = fit_logistic(xs, ys, l2=0.0, weights=[2.0] * 1000 + [1.0] * 3000)
    assert ww[0] == pytest.approx(w2[0], abs=1e-6) and ww[1] == pytest.approx(w2[1], abs=1e-6)


def test_default_scores_only_the_languages_it_was_trained_on():
    fr = new_document("va te faire foutre, connard", "t.jsonl", 0, language="fr")
    en = new_document("fuck off, you idiot", "t.jsonl", 1, language="en")
    t = Toxicity()
    assert t.languages == frozenset({"en", "de", "pt"})
    apply_stage(t, fr)
    apply_stage(t, en)
    assert "toxicity" not in fr.metadata and "cm_status" not in fr.metadata  # out of scope: untouched
    assert en.metadata["cm_reason"] == "toxic"
    assert Toxicity(languages="all").languages is None
    assert Toxicity(scorer="wordlist").languages is None  # the word list declares no languages


def test_cli_mistakes_are_one_line_exit_2(tmp_path, capsys):
    from corpusmill.cli import main

    assert main(["train-toxicity", "--sets", str(tmp_path / "nope"), "--out", str(tmp_path / "m.ftz")]) == 2
    assert main(["eval-toxicity"]) == 2
    assert main(["eval-toxicity", "--sets", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "--sets" in err[0] and "--input" in err[1]
    assert not (tmp_path / "m.ftz").exists()


def test_eval_toxicity_checks_scorers_and_model_before_work(tmp_path, capsys):
    from corpusmill.cli import main

    not_a_model = tmp_path / "m.bin"
    not_a_model.write_text("not a model")
    csv = tmp_path / "rows.csv"
    csv.write_text("text,label\nhello,0\n")
    assert main(["eval-toxicity", "--sets", str(tmp_path), "--scorers", "wordlist,nope"]) == 2
    assert main(["eval-toxicity", "--sets", str(tmp_path), "--model", str(tmp_path / "missing.bin")]) == 2
    assert main(["eval-toxicity", "--sets", str(tmp_path), "--model", str(not_a_model)]) == 2
    assert main(["eval-toxicity", "--input", str(csv), "--positive", "1", "--model", str(not_a_model)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4, err
    assert "'nope'" in err[0] and "missing.bin does not exist" in err[1]
    assert "not a fastText model" in err[2] and "not a fastText model" in err[3]


def test_long_text_is_scored_by_its_most_toxic_window():
    sc = FastTextScorer(None)
    neutral = "The committee met on Tuesday to discuss the budget of the new library building. " * 30
    toxic = "fuck you, you worthless piece of shit."
    names = ["fasttext_logit", "fasttext_max_logit", "wordlist", "wordlist_hits"]
    long, short, empty = sc.feature_rows([neutral + toxic + " " + neutral, toxic, " "], names, 50)
    assert long["fasttext_max_logit"] > long["fasttext_logit"] + 1.0
    assert short["fasttext_max_logit"] == short["fasttext_logit"]  # a short text is its own window
    assert long["wordlist_hits"] == short["wordlist_hits"] > 0 and long["wordlist"] < short["wordlist"]
    assert empty is None


def test_eval_toxicity_reports_every_set(shared_data, tmp_path, capsys):
    from corpusmill.cli import main

    out = tmp_path / "eval.json"
    assert main(["eval-toxicity", "--sets", str(shared_data / "toxicity"), "--scorers", "wordlist,default",
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res) == set(SETS)
    for name, by in res.items():
        assert set(by) == {"wordlist", "default"}
        for m in by.values():
            assert {"precision", "recall", "f1", "accuracy", "roc_auc", "docs_per_s"} <= set(m)
    assert res["germeval"]["default"]["f1"] > res["germeval"]["wordlist"]["f1"]
    assert "| hatecheck (860, 605) | default |" in capsys.readouterr().out
