"""Connected components as many tasks (corpusmill.curation.dedup.components): the same clusters,
survivors and verdicts as the one-task cluster_table, with every task holding fewer records than the
graph has edges, on generated graphs where one component spans every partition."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusmill.curation.dedup.clusters import ClusterLookup, cluster_table
from corpusmill.curation.dedup.components import run_components
from corpusmill.curation.dedup.lsh import DOCS_SCHEMA, EDGE


def random_graph(seed: int, n: int = 3000, ranks: int = 3):
    """Doc identities over ``ranks`` doc tables and near/exact edges: one long path through a third of
    the nodes (a component in every partition, of diameter ~n/3), random small clusters, and exact
    edges inside some of them."""
    rng = np.random.default_rng(seed)
    keys = np.array([(r << 32) | i for r in range(ranks) for i in range(n // ranks)], dtype=np.uint64)
    n = keys.size
    perm = rng.permutation(n)
    big = perm[: n // 3]
    near = [np.stack([keys[big[:-1]], keys[big[1:]]], 1)]
    rest = perm[n // 3 :]
    for _ in range(n // 2):  # random small clusters (some merge into each other)
        a, b = rng.choice(rest, 2, replace=False)
        near.append(np.array([[keys[a], keys[b]]], np.uint64))
    near = np.concatenate(near)
    exact = near[rng.random(len(near)) < 0.3]
    exact = np.concatenate([exact, np.stack([keys[big[::7]], keys[big[3::7][: len(big[::7])]]], 1)[: len(big[3::7])]])
    ids = [f"d{int(k >> 32)}-{int(k & 0xFFFFFFFF)}" for k in keys]
    sf = [None if i % 97 == 0 else f"shard{rng.integers(0, 9)}.jsonl" for i in range(n)]
    pos = [None if i % 89 == 0 else int(rng.integers(0, 50)) for i in range(n)]
    length = rng.integers(1, 40, n)  # many ties: the 'longest' rule falls back to corpus order
    ident = pa.table({"key": pa.array(keys), "id": ids, "source_file": pa.array(sf, pa.string()),
                      "position": pa.array(pos, pa.int64()), "length": pa.array(length)}, schema=DOCS_SCHEMA)
    return ident, near, exact, ranks


def write_workdir(path, ident, near, exact, ranks, survivor, near_files=3):
    """A work directory as the signature and bucket phases leave it."""
    (path / "sig" / "docs").mkdir(parents=True)
    (path / "edges" / "done").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"survivor": survivor}))
    rank = ident["key"].to_numpy() >> np.uint64(32)
    for r in range(ranks):
        pq.write_table(ident.filter(pa.array(rank == r)), path / "sig" / "docs" / f"r{r:05d}.parquet", row_group_size=128)
    jobs = {f"minhash-b{j:03d}-p000": near[j::near_files] for j in range(near_files)}
    jobs["exact-p000"] = exact
    for j, e in jobs.items():
        rec = np.empty(len(e), EDGE)
        rec["a"], rec["b"] = e[:, 0], e[:, 1]
        rec.tofile(path / "edges" / f"{j}.bin")
        (path / "edges" / "done" / f"{j}.json").write_text("{}")
    (path / "edges" / "jobs.json").write_text(json.dumps({"jobs": list(jobs)}))


def mapping(workdir) -> dict:
    return {r["id"]: r for r in ClusterLookup(workdir).table().to_pylist()}


@pytest.mark.parametrize("survivor", ["first", "longest"])
@pytest.mark.parametrize("tasks,max_records", [(1, 10_000_000), (4, 2000)])
def test_components_equal_one_task_clusters(tmp_path, survivor, tasks, max_records):
    ident, near, exact, ranks = random_graph(seed=tasks)
    write_workdir(tmp_path, ident, near, exact, ranks, survivor)
    ref = {r["id"]: r for r in cluster_table(ident, near, exact, survivor=survivor).to_pylist()}
    pool = pa.default_memory_pool()
    meta = run_components(tmp_path, tasks, max_records=max_records, rows_per_partition=500)
    # the tasks run on Arrow's system pool (flat peak RSS) and give the caller's pool back
    assert pa.default_memory_pool().backend_name == pool.backend_name
    got = mapping(tmp_path)
    assert got.keys() == ref.keys()
    for k, r in ref.items():
        assert got[k] == r, k
    verdicts = [r["verdict"] for r in ref.values()]
    assert meta["docs_in_clusters"] == len(ref) and meta["clusters"] == verdicts.count("keep")
    assert meta["exact_duplicates"] == verdicts.count("exact_duplicate")
    assert meta["partitions"] == -(-len(ref) // 500)
    # one component holds a third of the nodes, and it reaches every task's partition
    sizes = [r["cluster_size"] for r in ref.values()]
    assert max(sizes) >= ident.num_rows // 3
    if tasks > 1:
        # per task and phase, records held at once stay under the cap, far below the graph's edge records
        stats = [json.loads(p.read_text()) for p in (tmp_path / "cc" / "done").glob("*/*.json")]
        assert max(s.get("max_held", 0) for s in stats) <= max_records
        assert max_records < 2 * (len(near) + 2 * len(exact))
        # labels and survivors hold chunks of nodes, not a partition's nodes
        chunk = max(64, max_records // 32)
        assert max(s.get("max_nodes_held", 0) for s in stats) <= 2 * chunk < len(ref) // tasks
        assert sum(s.get("chunks", 0) for s in stats) > tasks and max(s.get("sub_ranges", 0) for s in stats) > 1


def test_lookup_reads_the_shard_it_is_asked_about(tmp_path):
    """The marker's look-up (per shard, by row-group statistics) finds every mapping row, documents
    without a source_file included, in one large partition of several row groups."""
    ident, near, exact, ranks = random_graph(seed=3)
    write_workdir(tmp_path, ident, near, exact, ranks, "first")
    run_components(tmp_path, 2, max_records=4000, rows_per_partition=1_000_000)
    lk = ClusterLookup(tmp_path)
    assert lk.partitions == 1
    f = pq.ParquetFile(tmp_path / "clusters" / "part-00000.parquet")
    assert f.metadata.num_row_groups > 1
    rows = lk.table().to_pylist()
    assert any(r["source_file"] is None for r in rows)
    for r in rows:
        info = lk.get(r["id"], r["source_file"])
        assert (info.cluster, info.cluster_size, info.verdict, info.exact_cluster, info.exact_cluster_size) == (
            r["cluster"], r["cluster_size"], r["verdict"], r["exact_cluster"], r["exact_cluster_size"])
    assert lk.get("no-such-id", "shard1.jsonl") is None and len(lk._cache) <= 2


@pytest.mark.parametrize("survivor", ["first", "longest"])
def test_cluster_phases_under_datatrove_executor_equal_one_task(shared_data, tmp_path, survivor):
    """Real documents (dolma sample): the cluster phase as 3 datatrove tasks with a small record cap
    gives exactly the one-task in-memory mapping (build_clusters)."""
    import gzip
    import shutil

    from datatrove.executor import LocalPipelineExecutor

    from corpusmill.curation.dedup.clusters import build_clusters
    from corpusmill.curation.dedup.lsh import DedupConfig
    from corpusmill.pipelines.datatrove_dedup import cluster_phases, dedup_documents
    from corpusmill.curation.document import new_document

    src = shared_data / "webtext" / "dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
    with gzip.open(src, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    docs = [new_document(r["text"], src.name, i, length=i % 3) for i, r in enumerate(rows)]
    work = tmp_path / "work"
    dedup_documents(docs, work, DedupConfig(survivor=survivor), num_tasks=2, mark=False)
    shutil.copytree(work, tmp_path / "ref")
    build_clusters(tmp_path / "ref", rows_per_partition=10)
    ref = ClusterLookup(tmp_path / "ref").table().to_pylist()
    assert sum(r["verdict"] == "exact_duplicate" for r in ref) >= 5
    for name, pipeline, tasks in cluster_phases(str(work), 3, max_rounds=12):
        step = pipeline[0]
        step.max_records, step.rows_per_partition = 64, 10
        if step.converged(tasks):
            continue
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(tmp_path / "logs" / name)).run()
    got = ClusterLookup(work).table().to_pylist()
    key = lambda r: r["id"]  # noqa: E731
    assert sorted(got, key=key) == sorted(ref, key=key)
    assert ClusterLookup(work).meta["partitions"] == ClusterLookup(tmp_path / "ref").meta["partitions"] > 1
