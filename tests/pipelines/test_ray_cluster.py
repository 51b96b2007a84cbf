"""A real two-node Ray cluster on this machine (a head and a second node, each with its own temp
directory and resources, both started with this checkout's Python so workers import this code): the
default recipe with dedup through ``--executor ray`` gives the local executor's output (the session's
reference run, ``default_run`` in tests/conftest.py)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest
from conftest import REFERENCE_ARGS

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "examples" / "default.yaml"
RAY = [sys.executable, "-m", "ray.scripts.scripts"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_under(root: str) -> list[int]:
    """Processes of this test's cluster: their command line names its temp directory."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if root in cmd:
            pids.append(int(p.name))
    return pids


def _stop(root: str, env: dict) -> None:
    """Stop this cluster only (``ray stop`` would stop every Ray process on the machine): its
    processes by id, TERM then KILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _pids_under(root)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10
        while pids and time.time() < deadline and _pids_under(root):
            time.sleep(0.2)


@pytest.fixture
def ray_cluster():
    root = tempfile.mkdtemp(prefix="cmray-", dir="/tmp")  # short: Ray's socket paths are length-limited
    port = _free_port()
    # Ray >= 2.5x refuses a second node without the cluster's token: one random token for this cluster
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(REPO), RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN=secrets.token_hex(16))
    env.pop("RAY_ADDRESS", None)
    # memory is a logical resource here: datatrove's Ray executor asks 2 GB per task (mem_per_cpu_gb)
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--memory=4500000000", "--disable-usage-stats"]
    def run(cmd, timeout=180):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        assert res.returncode == 0, f"{cmd}: {res.stdout[-2000:]}{res.stderr[-4000:]}"
        return res

    try:
        run(RAY + ["start", "--head", f"--port={port}", f"--temp-dir={root}/head", "--include-dashboard=false",
                   '--resources={"head": 1}', *common])
        for attempt in range(3):  # a raylet gets 30 s to register (fixed in Ray): slow on a loaded machine
            res = subprocess.run(RAY + ["start", f"--address=127.0.0.1:{port}", f"--temp-dir={root}/node2",
                                        '--resources={"node2": 1}', *common],
                                 env=env, capture_output=True, text=True, timeout=180)
            if res.returncode == 0:
                break
            _stop(f"{root}/node2", env)
        assert res.returncode == 0, res.stderr[-4000:]
        address = f"127.0.0.1:{port}"
        check = ("import ray, json, time; ray.init(address='%s', logging_level='ERROR'); t=time.time()\n"
                 "while len([n for n in ray.nodes() if n['Alive']]) < 2 and time.time()-t < 60: time.sleep(0.5)\n"
                 "print(json.dumps([sorted(n['Resources']) for n in ray.nodes() if n['Alive']]))" % address)
        res = run([sys.executable, "-c", check], timeout=120)
        yield address, json.loads(res.stdout.strip().splitlines()[-1]), env
    finally:
        _stop(root, env)
        shutil.rmtree(root, ignore_errors=True)


def q(sql: str):
    return duckdb.sql(sql).fetchall()


@pytest.mark.slow
def test_default_recipe_on_two_node_ray_cluster_equals_local(default_run, ray_cluster, shared_data, tmp_path):
    address, nodes, env = ray_cluster
    assert len(nodes) == 2 and any("head" in r for r in nodes) and any("node2" in r for r in nodes)
    local, ray = default_run.out, tmp_path / "ray"  # the local executor's run: the session's reference
    res = subprocess.run([sys.executable, "-m", "corpusmill.cli", "curate", str(DEFAULT), "--data-root",
                          str(shared_data), "--output", str(ray), "--executor", "ray", *REFERENCE_ARGS],
                         cwd=REPO, env=dict(env, RAY_ADDRESS=address), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-6000:]
    for sql in (
        "SELECT id, md5(text), dedup_cluster, dedup_cluster_size FROM read_parquet('{}/curated/*.parquet') ORDER BY id",
        "SELECT id, stage, reason FROM read_parquet('{}/dropped/*.parquet') ORDER BY id",
        "SELECT shard, read, kept, dropped, errored FROM read_parquet('{}/manifest/*.parquet') ORDER BY shard",
    ):
        assert q(sql.format(ray)) == q(sql.format(local))
    stages = {r[0] for r in q(f"SELECT DISTINCT stage FROM read_parquet('{ray}/dropped/*.parquet')")}
    assert {"exact_dedup", "minhash_dedup"} <= stages
    # the cluster phase ran as many tasks on the cluster
    assert (ray / "logs" / "clusters-labels").is_dir() and (ray / "_dedup" / "clusters" / "_meta.json").exists()
