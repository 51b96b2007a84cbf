"""The signature and bucket phases write and read their work directory through fsspec: the same files
(byte for byte) in a local directory and behind a URL (fsspec's in-process ``memory://`` file
system here; the S3 server test of a whole recipe lives with the engine tests)."""

from __future__ import annotations

import gzip
import json

import fsspec
import pytest

from corpusmill.curation.dedup import storage
from corpusmill.curation.dedup.lsh import DedupConfig, SignatureWriter, bucket_jobs, check_signatures_complete, run_bucket_job


def _texts(shared_data, n=300):
    path = shared_data / "webtext" / "dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f][:n]
    # planted copies: exact, and near (one word changed)
    return texts + texts[:20] + [t.replace(" the ", " a ", 1) for t in texts[20:40]]


def _phases(workdir: str, texts, config: DedupConfig) -> dict[str, bytes]:
    for rank in range(2):
        with SignatureWriter(workdir, config, rank, 2, max_buffer_docs=64) as w:  # several runs per task
            for i, t in enumerate(texts[rank::2]):
                w.add(f"doc{rank}-{i}", t, f"shard{rank}", i)
    assert check_signatures_complete(workdir) == 2
    for job in bucket_jobs(config, parts=2):
        run_bucket_job(workdir, job, parts=2, window_records=100)
    files = storage.listdir(workdir, recursive=True)
    return {f[len(workdir):]: storage.read_bytes(f) for f in files}


@pytest.mark.parametrize("verify", ["off", "signature", "exact"])
def test_memory_url_and_local_directory_hold_the_same_files(shared_data, tmp_path, verify):
    texts = _texts(shared_data)
    config = DedupConfig(verify=verify)
    local = _phases(str(tmp_path / "work"), texts, config)
    url = f"memory://dedup-storage-{verify}/work"
    try:
        remote = _phases(url, texts, config)
    finally:
        fsspec.filesystem("memory").rm(f"/dedup-storage-{verify}", recursive=True)
    assert set(local) == set(remote)
    docs_tables = [k for k in local if k.startswith("/sig/docs/")]
    assert docs_tables and any(k.startswith("/edges/minhash-") for k in local)
    for k in local:
        if k not in docs_tables:  # Parquet files carry no paths, but compare the rest byte for byte
            assert local[k] == remote[k], k
    edges = sum(len(v) for k, v in local.items() if k.startswith("/edges/") and k.endswith(".bin")) // 16
    assert edges >= 40  # the planted copies


def test_rerun_of_a_task_replaces_its_files_behind_a_url():
    url = "memory://dedup-storage-rerun/work"
    try:
        for n in (200, 50):
            with SignatureWriter(url, DedupConfig(), 0, 1, max_buffer_docs=40) as w:
                for i in range(n):
                    w.add(f"d{i}", f"document number {i} has a few words in it", "s", i)
        runs = [p for p in storage.listdir(url + "/sig/exact")]
        assert len(runs) == 2  # 50 documents in runs of 40: the five runs of the first attempt are gone
    finally:
        fsspec.filesystem("memory").rm("/dedup-storage-rerun", recursive=True)
