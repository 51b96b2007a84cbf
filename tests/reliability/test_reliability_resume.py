"""Crash and resume: ``kill -9`` a run mid-way, rerun the same command, get what an uninterrupted run gives.

* curate on datatrove (local executor): one input is a named pipe (FIFO) the test feeds by hand, so
  the run is killed while that shard is half read (its ``.tmp-*`` Parquet files open), with the
  shards before it finished (manifest written) and the ones after it not started;
* curate on Beam (local FnApiRunner): killed while shards are being written (some manifests exist,
  some do not);
* ``corpusmill pack``: killed after some token shards of the pack were written;
* ``corpusmill train``: killed after a checkpoint, between two checkpoints; rerun with ``--resume``.

After the rerun: same ids and content as the uninterrupted run, no duplicate ids, no partial or
temporary files in the final directories. See docs/reliability.md ("Crash and resume").
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def cli(*args: str) -> list[str]:
    # -v: these tests read the engine's log lines ("already done" ...), which a quiet run sends to RUN/logs
    return [sys.executable, "-m", "corpusmill.cli", "-v", *args]


def start(cmd: list[str]) -> subprocess.Popen:
    """A command in its own process group (so the test can kill it and every child it started)."""
    return subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def kill9(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.communicate(timeout=60)


def run(cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    p = start(cmd)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill9(p)
        raise AssertionError(f"{' '.join(cmd)} did not finish in {timeout} s") from None
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{out[-6000:]}")
    return subprocess.CompletedProcess(cmd, p.returncode, out, "")


def wait_for(cond, p: subprocess.Popen, timeout: float, what: str, poll: float = 0.01) -> None:
    t0 = time.time()
    while not cond():
        if p.poll() is not None:
            raise AssertionError(f"the process ended before {what}:\n{p.communicate()[0][-4000:]}")
        if time.time() - t0 > timeout:
            kill9(p)
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def stop(p: subprocess.Popen) -> None:
    """SIGSTOP the whole process group: what the test sees next is the state the kill will leave."""
    os.killpg(p.pid, signal.SIGSTOP)
    time.sleep(0.05)


def manifests(out: Path) -> int:
    return len(list((out / "manifest").glob("*.parquet"))) if (out / "manifest").exists() else 0


def mid_shard(out: Path, key: str, done: int) -> bool:
    """``done`` shards finished and shard ``key`` half written (its temporary Parquet file open)."""
    return manifests(out) == done and any((out / "curated").glob(f".tmp-{key}*"))


def rows(out: Path, sub: str) -> list[dict]:
    files = sorted((out / sub).glob("*.parquet"))
    return pq.read_table(files).to_pylist() if files else []


MANIFEST_COLS = ("shard", "read", "kept", "dropped", "errored", "dropped_by", "errored_by", "recipe_hash", "input_bytes")


def assert_same_run(out: Path, ref: Path) -> None:
    """Same files, same rows (every column of curated and dropped, the counts of the manifests)."""
    for sub in ("curated", "dropped", "manifest"):
        assert sorted(p.name for p in (out / sub).iterdir()) == sorted(p.name for p in (ref / sub).iterdir()), sub
    for sub in ("curated", "dropped"):
        a = sorted(rows(out, sub), key=lambda r: r["id"])
        b = sorted(rows(ref, sub), key=lambda r: r["id"])
        assert len(a) == len(b) and a == b, sub
    ids = [r["id"] for r in rows(out, "curated") + rows(out, "dropped")]
    assert len(ids) == len(set(ids)), "duplicate ids"
    ma = sorted(({k: r[k] for k in MANIFEST_COLS} for r in rows(out, "manifest")), key=lambda r: r["shard"])
    mb = sorted(({k: r[k] for k in MANIFEST_COLS} for r in rows(ref, "manifest")), key=lambda r: r["shard"])
    assert ma == mb
    for r in ma:
        assert r["read"] == r["kept"] + r["dropped"] + r["errored"]
    leftovers = [p for sub in ("curated", "dropped", "manifest") for p in (out / sub).iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary files left in the final directories: {leftovers}"
    assert json.loads((out / "run.json").read_text())["totals"]["identity_holds"]


def jsonl_shard(k: int, n: int) -> bytes:
    """``n`` documents (and two bad lines, so that dropped/ has rows too), ~1 KB each."""
    lines = []
    for i in range(n):
        if i in (3, n // 2):
            lines.append("{broken json line")
            continue
        words = " ".join(f"w{(k * 7919 + i * 31 + j) % 997}" for j in range(150))
        lines.append(json.dumps({"id": f"s{k}-d{i}", "url": f"http://example.com/{k}/{i}", "text": f"Shard {k} doc {i}. {words}"}))
    return ("\n".join(lines) + "\n").encode()


RECIPE = """\
inputs: [{path: webtext, glob: '*.jsonl', reader: jsonl}]
stages: [{stage: extract}]
output: {dir: out}
engine: {tasks: 1, workers: 1}
"""


# ------------------------------------------------------------------------------------------ curate, datatrove


def test_datatrove_curate_killed_mid_shard_resumes_to_the_same_output(tmp_path):
    shards = {"a0.jsonl": jsonl_shard(0, 200), "a1.jsonl": jsonl_shard(1, 200), "b_big.jsonl": jsonl_shard(2, 30_000),
              "c0.jsonl": jsonl_shard(3, 200), "c1.jsonl": jsonl_shard(4, 200)}
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    data = tmp_path / "data" / "webtext"
    data.mkdir(parents=True)
    for name, content in shards.items():
        (data / name).write_bytes(content)
    cmd = cli("curate", str(recipe), "--data-root", str(data.parent), "--output", str(tmp_path / "out"))
    run(cli("curate", str(recipe), "--data-root", str(data.parent), "--output", str(tmp_path / "ref")))

    # shards are read in name order (a0 a1 b_big c0 c1): stop the run inside b_big, then kill -9 it
    out = tmp_path / "out"
    p = start(cmd)
    try:
        wait_for(lambda: mid_shard(out, "webtext__b_big", 2), p, 300, "the run to be inside b_big", poll=0.002)
        stop(p)
        assert mid_shard(out, "webtext__b_big", 2)
    finally:
        kill9(p)
    assert [x.name[:14] for x in sorted((out / "manifest").glob("*.parquet"))] == ["webtext__a0.js", "webtext__a1.js"]
    assert not (out / "run.json").exists()

    # rerun the very same command
    a_mtimes = {x.name: x.stat().st_mtime_ns for x in (out / "curated").glob("webtext__a*")}
    res = run(cmd)
    assert "already done" in res.stdout, "finished shards are skipped"
    assert {x.name: x.stat().st_mtime_ns for x in (out / "curated").glob("webtext__a*")} == a_mtimes
    assert_same_run(out, tmp_path / "ref")


# ------------------------------------------------------------------------------------------ curate, Beam


def test_beam_curate_killed_while_writing_resumes_to_the_same_output(tmp_path):
    n_shards = 12
    data = tmp_path / "data" / "webtext"
    data.mkdir(parents=True)
    for k in range(n_shards):
        (data / f"s{k:02d}.jsonl").write_bytes(jsonl_shard(k, 1500))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    beam = ("--engine", "beam", "--data-root", str(data.parent))
    run(cli("curate", str(recipe), *beam, "--output", str(tmp_path / "ref")))

    # Beam writes a shard's files once all its records are grouped: stop the run as soon as the first
    # shards are written (the others are not), then kill -9 it
    out = tmp_path / "out"
    cmd = cli("curate", str(recipe), *beam, "--output", str(out))
    p = start(cmd)
    try:
        wait_for(lambda: manifests(out) > 0, p, 300, "the first manifest", poll=0.002)
        stop(p)
        written = manifests(out)
    finally:
        kill9(p)
    assert 0 < written < n_shards, "killed while the shards were being written"
    assert not (out / "run.json").exists()
    res = run(cmd)
    assert_same_run(out, tmp_path / "ref")
    assert "accounting: read" in res.stdout


# ------------------------------------------------------------------------------------------ pack


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"}


def _manifest(root: Path) -> dict:
    m = json.loads((root / "manifest.json").read_text())
    m.pop("stats", None)
    return m


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory) -> Path:
    from corpusmill.tokenizer.sample_corpus import write_sample_corpus
    from corpusmill.tokenizer.train import train_tokenizer

    d = tmp_path_factory.mktemp("pack-corpus")
    write_sample_corpus(shared_data, d / "curated", max_bytes=3_000_000, files=3)
    train_tokenizer(str(d / "curated"), 1024, d / "tok", heldout_fraction=0, report=False)
    return d


def test_pack_killed_mid_pack_reruns_to_identical_files(corpus, tmp_path):
    args = ["pack", "--tokenizer", str(corpus / "tok"), "--input", str(corpus / "curated" / "*.parquet"),
            "--format", "ds", "--shard-tokens", "20000", "--val-fraction", "0.05", "--workers", "1",
            "--encoder", "hf", "--no-progress"]
    run(cli(*args, "--out", str(tmp_path / "ref")))
    out = tmp_path / "out"
    p = start(cli(*args, "--out", str(out)))

    def some_shards_written() -> bool:
        return len(list(out.glob(".partial-*/train/train_*.ds"))) >= 2

    try:
        wait_for(some_shards_written, p, 300, "token shards to be written")
        stop(p)
    finally:
        kill9(p)
    assert not (out / "manifest.json").exists(), "killed before the pack was complete"
    assert not (out / "train").exists(), "nothing is moved into place before the end"
    run(cli(*args, "--out", str(out)))
    assert _digest(out / "train") == _digest(tmp_path / "ref" / "train")
    assert _digest(out / "val") == _digest(tmp_path / "ref" / "val")
    assert _manifest(out) == _manifest(tmp_path / "ref")
    res = run(cli("pack", "--verify", str(out), "--samples", "20"))
    assert res.stdout.startswith("OK")


def test_pack_rerun_removes_what_a_killed_pack_left(corpus, tmp_path):
    args = ["pack", "--tokenizer", str(corpus / "tok"), "--input", str(corpus / "curated" / "*.parquet"),
            "--format", "ds", "--shard-tokens", "20000", "--val-fraction", "0.05", "--workers", "1",
            "--encoder", "hf", "--no-progress", "--out", str(tmp_path / "out")]
    p = start(cli(*args))
    try:
        wait_for(lambda: any((tmp_path / "out").glob(".partial-*/train/train_*.ds")), p, 300, "token shards")
    finally:
        kill9(p)
    run(cli(*args))
    assert not [x.name for x in (tmp_path / "out").iterdir() if x.name.startswith(".")]


# ------------------------------------------------------------------------------------------ train


TRAIN_SET = ["n_layer=2", "n_head=2", "n_embd=48", "seq_len=32", "batch_size=4", "grad_accum=2", "max_steps=40",
             "warmup_steps=4", "eval_interval=10", "eval_batches=2", "ckpt_interval=10", "dropout=0.1", "threads=1",
             "plot=false", "log_interval=1"]


@pytest.fixture(scope="module")
def token_dir(tmp_path_factory) -> Path:
    import numpy as np

    from corpusmill.trainer.data import write_token_dir

    rng = np.random.default_rng(3)
    base = np.tile(rng.integers(0, 200, 50), 60)
    toks = np.where(rng.random(len(base)) < 0.1, rng.integers(0, 200, len(base)), base)
    return write_token_dir(tmp_path_factory.mktemp("train-tokens"), [toks[:1500], toks[1500:2700]], [toks[2700:]], vocab_size=200)


def _train_cmd(token_dir: Path, out: Path, *extra: str) -> list[str]:
    sets = [a for s in TRAIN_SET for a in ("--set", s)]
    return cli("train", "tiny", "--data-dir", str(token_dir), "--out-dir", str(out), *sets, *extra)


def _curve(out: Path) -> list[tuple]:
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return [(r["kind"], r["step"], r.get("loss"), r.get("val_loss"), r.get("lr"), r.get("grad_norm")) for r in recs]


def test_train_killed_after_a_checkpoint_resumes_to_the_same_curve_and_weights(token_dir, tmp_path):
    import torch

    run(_train_cmd(token_dir, tmp_path / "ref"))
    out = tmp_path / "out"
    p = start(_train_cmd(token_dir, out))

    def steps() -> list[int]:
        if not (out / "metrics.jsonl").exists():
            return []
        done = []
        for line in (out / "metrics.jsonl").read_text().splitlines():
            try:
                done.append(json.loads(line)["step"])
            except ValueError:  # a line being written
                pass
        return done

    def past_checkpoint() -> bool:  # ckpt.pt of step 10 written, and steps 10-12 done (no save in progress)
        return (out / "ckpt.pt").exists() and 12 <= max(steps(), default=0) < 19

    try:
        wait_for(past_checkpoint, p, 300, "a checkpoint and two more steps", poll=0.002)
        stop(p)
        assert max(steps()) < 20, "stopped between the step-10 and the step-20 checkpoints"
    finally:
        kill9(p)
    assert torch.load(out / "ckpt.pt", weights_only=False)["step"] == 10
    run(_train_cmd(token_dir, out, "--resume"))
    assert _curve(out) == _curve(tmp_path / "ref")
    a = torch.load(out / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "ref" / "ckpt.pt", weights_only=False)
    assert a["step"] == b["step"] == 40
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert not [x.name for x in out.iterdir() if x.name.startswith(".")], "temporary checkpoint files left"
