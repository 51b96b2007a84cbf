"""The batch hook (``apply_stage_batch``, ``filter_batch``) with the toxicity scorers: same results as one
document at a time, the same error accounting, and the same corpus from both engines."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest

from corpusmill.curation.document import STATUS, new_document
from corpusmill.curation.filters.toxicity import Toxicity
from corpusmill.curation.stage import Transform, apply_stage, apply_stage_batch
from corpusmill.tools.toxicity_train import read_labelled

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests"))


@pytest.fixture(scope="module")
def tweets(shared_data):
    rows = read_labelled(shared_data / "toxicity" / "davidson2017_labeled_data.csv", "tweet", "class")
    return [t for t, _ in rows[:600]]


def _docs(texts):
    return [new_document(t, "t.jsonl", i) for i, t in enumerate(texts)]


def _outcome(docs):
    return [(d.metadata.get("toxicity"), d.metadata.get(STATUS), d.metadata.get("cm_reason")) for d in docs]


@pytest.mark.parametrize("scorer", ["wordlist", "profanity_check", "fasttext"])
def test_batch_equals_one_at_a_time(tweets, scorer):
    if scorer == "profanity_check":
        pytest.importorskip("profanity_check")
    one, many = Toxicity(scorer=scorer), Toxicity(scorer=scorer, batch_size=64)
    a, b = _docs(tweets), _docs(tweets)
    for d in a:
        apply_stage(one, d)
    for i in range(0, len(b), 64):
        apply_stage_batch(many, b[i : i + 64])
    assert many.batch_size == 64
    assert _outcome(a) == _outcome(b)
    assert any(s == "dropped" for _, s, _ in _outcome(b)) and any(s is None for _, s, _ in _outcome(b))


class _Fragile:
    """A scorer that fails on one text, in batches as well as alone."""

    def setup(self):
        pass

    def score(self, text):
        if "BOOM" in text:
            raise RuntimeError("bad record")
        return 0.9 if "bad" in text else 0.1

    def score_many(self, texts):
        return [self.score(t) for t in texts]


def test_one_bad_document_is_a_counted_error_and_the_batch_goes_on():
    stage = Toxicity(scorer=_Fragile())
    assert stage.batch_size == 256
    docs = _docs(["fine", "bad words", "BOOM", "fine again"])
    docs[3].metadata[STATUS] = "dropped"  # already rejected upstream: not touched
    apply_stage_batch(stage, docs)
    assert [d.metadata.get(STATUS) for d in docs] == [None, "dropped", "error", "dropped"]
    assert docs[2].metadata["cm_reason"] == "exception:RuntimeError" and "bad record" in docs[2].metadata["cm_error"]
    assert docs[0].metadata["toxicity"] == 0.1 and "toxicity" not in docs[3].metadata
    # the same as one at a time
    single = _docs(["fine", "bad words", "BOOM"])
    for d in single:
        apply_stage(stage, d)
    assert _outcome(single) == _outcome(docs[:3])


class _Upper(Transform):
    name = "upper"
    batch_size = 8

    def transform(self, doc):
        doc.text = doc.text.upper()

    def transform_batch(self, docs):
        out = []
        for d in docs:
            if d.text == "x":
                out.append(ValueError("x is not allowed"))  # a per-document failure reported by the batch
            else:
                d.text = d.text.upper()
                out.append("shout" if "!" in d.text else None)
        return out


def test_transform_batch_results_and_per_document_errors():
    docs = _docs(["a", "x", "b!"])
    apply_stage_batch(_Upper(), docs)
    assert [d.text for d in docs] == ["A", "x", "B!"]
    assert [d.metadata.get(STATUS) for d in docs] == [None, "error", "dropped"]


def test_batch_size_one_without_score_many():
    class Plain:
        def setup(self):
            pass

        def score(self, text):
            return 0.0

    assert Toxicity(scorer=Plain()).batch_size == 1


RECIPE = """\
name: toxbatch
data_root: {data}
inputs:
  - path: .
    glob: "*.jsonl.gz"
    reader: jsonl
stages:
  - stage: toxicity
    scorer: {scorer}
    threshold: 0.5
    batch_size: 7
output:
  dir: out
engine:
  tasks: 1
  workers: 1
"""


@pytest.mark.slow
def test_engines_agree_with_batches(tweets, tmp_path):
    """300 real tweets as one JSONL shard: datatrove and Beam, both in batches of 7, give the corpus that
    one-document-at-a-time scoring gives."""
    import gzip
    import json

    from conftest import run_cli

    scorer = "profanity_check" if _has_profanity_check() else "wordlist"
    data = tmp_path / "data"
    data.mkdir()
    texts = tweets[:300]
    with gzip.open(data / "tweets.jsonl.gz", "wt", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": str(i), "text": t}) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(data=data, scorer=scorer))
    run_cli("curate", str(recipe), "--output", str(tmp_path / "dt"))
    run_cli("curate", str(recipe), "--output", str(tmp_path / "beam"), "--engine", "beam")

    ref = Toxicity(scorer=scorer)
    expected_scores = sorted(round(ref.scorer.score(t), 9) for t in texts)
    expected_dropped = sum(s >= 0.5 for s in expected_scores)
    kept = "SELECT id, text, toxicity, signals FROM read_parquet('{}/curated/*.parquet') ORDER BY id"
    dropped = "SELECT id, status, stage, reason FROM read_parquet('{}/dropped/*.parquet') ORDER BY id"
    man = "SELECT shard, read, kept, dropped, errored FROM read_parquet('{}/manifest/*.parquet') ORDER BY shard"
    for q in (kept, dropped, man):
        assert duckdb.sql(q.format(tmp_path / "beam")).fetchall() == duckdb.sql(q.format(tmp_path / "dt")).fetchall()
    (_, read, n_kept, n_dropped, errored), = duckdb.sql(man.format(tmp_path / "dt")).fetchall()
    assert (read, n_dropped, errored) == (300, expected_dropped, 0) and 0 < n_dropped < 300
    dropped_scores = duckdb.sql(
        f"SELECT map_from_entries(signals)['toxicity.score'] FROM read_parquet('{tmp_path}/dt/dropped/*.parquet')").fetchall()
    kept_scores = duckdb.sql(f"SELECT toxicity FROM read_parquet('{tmp_path}/dt/curated/*.parquet')").fetchall()
    got = sorted(round(float(r[0]), 9) for r in kept_scores + dropped_scores)
    assert got == expected_scores


def _has_profanity_check() -> bool:
    try:
        import profanity_check  # noqa: F401
    except ImportError:
        return False
    return True


def test_beam_dofn_flushes_a_partial_batch_at_bundle_end():
    pytest.importorskip("apache_beam")
    from apache_beam.utils.windowed_value import WindowedValue

    from corpusmill.pipelines.beam_engine import StageDoFn

    fn = StageDoFn("toxicity", {"scorer": "wordlist", "batch_size": 4})
    fn.setup()
    fn.start_bundle()
    docs = _docs(["fuck this", "a nice day", "shit happens", "hello there", "what the fuck"])
    out = [d for doc in docs for d in fn.process(doc)]
    assert [d.text for d in out] == [d.text for d in docs[:4]]  # one full batch
    rest = list(fn.finish_bundle())
    assert len(rest) == 1 and isinstance(rest[0], WindowedValue) and rest[0].value.text == "what the fuck"
    assert [d.metadata.get(STATUS) for d in docs] == ["dropped", None, "dropped", None, "dropped"]
