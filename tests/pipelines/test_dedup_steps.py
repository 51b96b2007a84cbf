"""The dedup phases as datatrove PipelineSteps, run by datatrove's LocalPipelineExecutor."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep

from corpusmill.pipelines.datatrove_dedup import DedupBuckets, DedupClusters, DedupMarker, DedupSignatures, dedup_documents
from corpusmill.curation.document import EVENT, SHARD_END, is_alive, new_document, reject

DOLMA = "webtext/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
N_DOCS = 300


def make_docs(rows: list[dict]) -> list:
    docs = []
    for i, r in enumerate(rows):
        d = new_document(r["text"], "webtext/dolma-00140.jsonl.gz", i)
        if i % 50 == 7:
            reject(d, "some_filter", "low_quality")  # rejected before dedup: must pass untouched
        docs.append(d)
    return docs


class ListReader(PipelineStep):
    """Yields this task's contiguous slice of the documents, then a shard-end control record."""

    name = "list reader"
    type = "test"

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        with gzip.open(self.path, "rt", encoding="utf-8") as f:
            rows = [json.loads(line) for _, line in zip(range(N_DOCS), f)]
        docs = make_docs(rows)
        n = len(docs)
        yield from docs[rank * n // world_size : (rank + 1) * n // world_size]
        event = new_document("", f"shard-{rank}", -1)
        event.metadata[EVENT] = SHARD_END
        yield event


class Collector(PipelineStep):
    name = "collector"
    type = "test"

    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir = out_dir

    def run(self, data, rank: int = 0, world_size: int = 1):
        path = Path(self.out_dir) / f"{rank:03d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            for doc in data:
                md = doc.metadata
                keys = ("cm_status", "cm_stage", "cm_reason", "dedup_cluster", "dedup_cluster_size", EVENT)
                f.write(json.dumps({"id": doc.id, **{k: md.get(k) for k in keys}}) + "\n")
                yield doc


def _run(pipeline, tasks, logs):
    LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(logs)).run()


def test_phases_under_datatrove_executor(shared_data, tmp_path):
    src = str(shared_data / DOLMA)
    work = tmp_path / "work"
    _run([ListReader(src), DedupSignatures(work)], 2, tmp_path / "logs1")
    _run([DedupBuckets(work)], 4, tmp_path / "logs2")
    _run([DedupClusters(work)], 1, tmp_path / "logs3")
    _run([ListReader(src), DedupMarker(work), Collector(str(tmp_path / "out"))], 3, tmp_path / "logs4")

    got = {}
    events = 0
    for p in sorted((tmp_path / "out").glob("*.jsonl")):
        for line in p.read_text().splitlines():
            row = json.loads(line)
            if row[EVENT]:
                events += 1
                assert row["dedup_cluster_size"] is None and row["cm_status"] is None
                continue
            got[row["id"]] = row
    assert events == 3 and len(got) == N_DOCS

    # same verdicts as the in-process driver on the same documents
    with gzip.open(src, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(N_DOCS), f)]
    ref = dedup_documents(make_docs(rows), tmp_path / "ref")
    assert ref.stats["exact_duplicates"] >= 5
    for d in ref.docs:
        g = got[d.id]
        md = d.metadata
        assert (g["cm_status"], g["cm_stage"], g["cm_reason"]) == (md.get("cm_status"), md.get("cm_stage"), md.get("cm_reason"))
        assert (g["dedup_cluster"], g["dedup_cluster_size"]) == (md.get("dedup_cluster"), md.get("dedup_cluster_size"))
        if md.get("cm_stage") == "some_filter":
            assert g["dedup_cluster_size"] is None
    assert sum(1 for d in ref.docs if is_alive(d)) == sum(1 for g in got.values() if g["cm_status"] is None)

    # a rerun of the whole thing (datatrove skips completed tasks; ours are idempotent) changes nothing
    stats = json.loads((work / "clusters" / "_meta.json").read_text())
    _run([DedupBuckets(work)], 4, tmp_path / "logs2b")
    _run([DedupClusters(work)], 1, tmp_path / "logs3b")
    assert json.loads((work / "clusters" / "_meta.json").read_text()) == stats


def test_marker_without_clusters_fails_loudly(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(DedupMarker(tmp_path).run(iter([new_document("x", "f", 0)])))


@pytest.mark.parametrize("verify", ["signature", "exact"])
def test_verified_phases_do_not_depend_on_the_task_split(shared_data, tmp_path, verify):
    from corpusmill.curation.dedup.clusters import ClusterLookup
    from corpusmill.curation.dedup.lsh import DedupConfig

    src = str(shared_data / DOLMA)
    work = tmp_path / "work"
    config = DedupConfig(verify=verify)
    _run([ListReader(src), DedupSignatures(work, config, max_buffer_docs=70)], 2, tmp_path / "logs1")
    _run([DedupBuckets(work, parts_per_band=2, window_records=500)], 4, tmp_path / "logs2")
    _run([DedupClusters(work)], 1, tmp_path / "logs3")
    table = {r["id"]: (r["cluster"], r["verdict"]) for r in ClusterLookup(work).table().to_pylist()}
    with gzip.open(src, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(N_DOCS), f)]
    ref = dedup_documents(make_docs(rows), tmp_path / "ref", config)
    assert table == {i: (c.cluster, c.verdict) for i, c in ref.clusters.items()}
    assert ref.stats["exact_duplicates"] >= 5
