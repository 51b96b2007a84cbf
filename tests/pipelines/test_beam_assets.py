"""Model files staged for Dataflow travel with their sidecars: ``stage_assets`` (what ``run_recipe_beam``
calls before submitting a Dataflow job) uploads a toxicity model with its ``.metrics.json`` and a quality
model with its ``.quality.json`` to a temp_location on a real S3-compatible server started by the test;
a "worker" with an empty cache builds the stages from the rewritten parameters and gets the same
thresholds, languages, calibration and scores as from the local files."""

from __future__ import annotations

import json

import pytest
from s3_server import s3_server  # noqa: F401  (the fixture)

from corpusmill.curation.filters.quality import SHIPPED_MODEL as QUALITY_MODEL
from corpusmill.curation.filters.toxicity import DEFAULT_MODEL as TOXICITY_MODEL
from corpusmill.curation.registry import build_stage
from corpusmill.pipelines.beam_assets import stage_assets
from corpusmill.pipelines.recipe import StageSpec

TEXTS = ["You are a complete idiot and everyone hates you.", "The committee approved the budget for the new library.",
         "Sherlock Holmes took his bottle from the corner of the mantel-piece and his hypodermic syringe from its neat morocco case."]


def _specs():
    return [StageSpec("toxicity", {"model_path": str(TOXICITY_MODEL)}),
            StageSpec("quality", {"model": str(QUALITY_MODEL), "top_fraction_of_training_crawl": 0.3}),
            StageSpec("gopher_quality", {})]


def _same_stages(local_specs, staged_specs):
    for a, b in zip(local_specs, staged_specs):
        if a.stage == "gopher_quality":
            continue
        la, lb = build_stage(a.stage, a.params), build_stage(b.stage, b.params)
        la.setup()
        lb.setup()
        assert la.threshold == lb.threshold and la.languages == lb.languages, a.stage
        if a.stage == "toxicity":
            assert lb.scorer._calibration == la.scorer._calibration is not None
            assert lb.scorer.score_many(TEXTS) == la.scorer.score_many(TEXTS)
        else:
            assert lb.meta == la.meta and lb.score_many(TEXTS) == la.score_many(TEXTS)


def test_staged_models_keep_their_sidecars(s3_server, tmp_path, monkeypatch):
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.mkdir("staging")
    local = _specs()
    dry = stage_assets(local, "s3://staging/tmp", dry_run=True)
    assert fs.find("staging") == []
    staged = stage_assets(local, "s3://staging/tmp/")
    assert [s.params for s in staged] == [s.params for s in dry]
    assert local[0].params["model_path"] == str(TOXICITY_MODEL)  # the caller's specs are left alone
    tox, qual = staged[0].params["model_path"], staged[1].params["model"]
    assert tox.startswith("s3://staging/tmp/corpusmill-assets/") and tox.endswith("/toxicity_fasttext.ftz")
    names = sorted(p.rsplit("/", 1)[1] for p in fs.find("staging"))
    assert names == ["quality_en.ftz", "quality_en.quality.json", "toxicity_fasttext.ftz", "toxicity_fasttext.linear.npz",
        "toxicity_fasttext.metrics.json"]
    side = json.loads(fs.cat(qual.removeprefix("s3://").replace("quality_en.ftz", "quality_en.quality.json")))
    assert side == json.loads(QUALITY_MODEL.with_name("quality_en.quality.json").read_text())

    # a worker: nothing cached yet; the stages are built from the staged parameters
    monkeypatch.setenv("CORPUSMILL_CACHE", str(tmp_path / "worker-cache"))
    _same_stages(local, staged)
    assert len(list((tmp_path / "worker-cache" / "remote").glob("*/*.json"))) == 2

    # staging again reuses the folders; a changed sidecar gets a new folder (a worker must not see the old one)
    assert [s.params for s in stage_assets(local, "s3://staging/tmp")] == [s.params for s in staged]
    model = tmp_path / "my_quality.ftz"
    model.write_bytes(QUALITY_MODEL.read_bytes())
    meta = json.loads(QUALITY_MODEL.with_name("quality_en.quality.json").read_text())
    (tmp_path / "my_quality.quality.json").write_text(json.dumps(meta))
    first = stage_assets([StageSpec("quality", {"model": str(model)})], "s3://staging/tmp")[0].params["model"]
    meta["default_threshold"] = 0.25
    (tmp_path / "my_quality.quality.json").write_text(json.dumps(meta))
    second = stage_assets([StageSpec("quality", {"model": str(model)})], "s3://staging/tmp")[0].params["model"]
    assert first != second
    q = build_stage("quality", {"model": second})
    assert q.threshold is None  # remote: resolved on the worker
    q.setup()
    assert q.threshold == 0.25
    with pytest.raises(FileNotFoundError):
        build_stage("quality", {"model": "s3://staging/none/x.ftz"}).setup()


def test_staging_to_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CORPUSMILL_CACHE", str(tmp_path / "cache"))
    staged = stage_assets(_specs(), str(tmp_path / "tmp"))
    assert sorted(p.name for p in (tmp_path / "tmp").rglob("*") if p.is_file()) == [
        "quality_en.ftz", "quality_en.quality.json", "toxicity_fasttext.ftz", "toxicity_fasttext.linear.npz",
        "toxicity_fasttext.metrics.json"]
    _same_stages(_specs(), staged)
