"""The Beam engine on Dataflow, offline: the job graph is built and contains every stage.
(Parity with the datatrove engine is in tests/pipelines/test_default_recipe.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "examples" / "default.yaml"


def test_dataflow_dry_run_builds_every_stage(shared_data, tmp_path):
    pytest.importorskip("apache_beam.runners.dataflow")
    from corpusmill.pipelines.beam_engine import run_recipe_beam
    from corpusmill.pipelines.recipe import load_recipe

    recipe = load_recipe(DEFAULT, {"data_root": str(shared_data), "output_dir": str(tmp_path / "out")})
    summary = run_recipe_beam(
        recipe,
        ["--runner=DataflowRunner", "--dry_run=True", "--no_auth", "--sdk_location=container",
         "--project=corpusmill-test", "--region=us-central1", "--temp_location=gs://corpusmill-test/tmp"],
    )
    assert summary["dry_run"]
    graph = summary["result"].job.proto_pipeline
    names = {t.unique_name for t in graph.components.transforms.values()}
    expected = ["ReadShard", "GroupByShard", "WriteShard", "Dedup:Keys", "Dedup:Clusters", "Dedup:Mark"]
    expected += [f"Stage{i:02d}:{s.stage}" for i, s in enumerate(recipe.stages) if not s.stage.endswith("_dedup")]
    for stage in expected:
        assert any(n == stage or n.startswith(stage + "/") for n in names), (stage, sorted(names)[:50])
    assert not (tmp_path / "out").exists(), "a dry run must not write outputs"
    # model files are staged with the job (under temp_location), never downloaded on workers
    lid = next(s for s in summary["stages"] if s.stage == "language_id")
    assert lid.params["model_path"].startswith("gs://corpusmill-test/tmp/corpusmill-assets/")
    assert lid.params["model_path"].endswith("/lid.176.ftz")
