"""trainer/data.py: the three packed-shard formats, the directory layout and the window sampler."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from corpusmill.trainer.data import (
    TokenWindows,
    open_shard,
    read_manifest_vocab,
    split_shards,
    write_datatrove,
    write_llmc,
    write_megatron,
    write_token_dir,
)

rng = np.random.default_rng(7)
DOCS16 = [rng.integers(0, 60_000, n) for n in (300, 17, 1000, 5)]
DOCS32 = [rng.integers(0, 200_000, n) for n in (300, 17, 1000, 5)]
ALL16 = np.concatenate(DOCS16)
ALL32 = np.concatenate(DOCS32)


def check_windows(paths, expected: np.ndarray, seq_len=64):
    w = TokenWindows(paths, seq_len)
    assert w.n_tokens == len(expected)
    assert w.n_windows == len(expected) - seq_len
    for i in [0, 1, 137, w.n_windows - 1]:
        np.testing.assert_array_equal(w.window(i), expected[i : i + seq_len + 1])
    b = w.batch(np.array([3, 0, w.n_windows - 1]))
    assert b.shape == (3, seq_len + 1) and b.dtype == np.int64
    np.testing.assert_array_equal(b[1], expected[: seq_len + 1])


def test_datatrove_uint16_and_uint32(tmp_path):
    p16 = write_datatrove(tmp_path / "a_00000_shuffled.ds", DOCS16, token_size=2)
    p32 = write_datatrove(tmp_path / "b_00000_shuffled.ds", DOCS32, token_size=4)
    assert open_shard(p16).dtype == np.dtype("<u2") and open_shard(p32).dtype == np.dtype("<u4")
    np.testing.assert_array_equal(open_shard(p16), ALL16)
    np.testing.assert_array_equal(open_shard(p32), ALL32)
    # the index holds cumulative document ends
    np.testing.assert_array_equal(np.fromfile(str(p16) + ".index", dtype="<u8"), np.cumsum([len(d) for d in DOCS16]))
    check_windows([p16], ALL16)
    # without metadata the token size is inferred from the index
    (tmp_path / "b_00000_shuffled.ds.metadata").unlink()
    np.testing.assert_array_equal(open_shard(p32), ALL32)


def test_megatron_uint16_and_int32(tmp_path):
    p = write_megatron(tmp_path / "m.bin", DOCS16, np.uint16)
    head = p.with_suffix(".idx").read_bytes()
    assert head[:9] == b"MMIDIDX\x00\x00" and struct.unpack("<Q", head[9:17])[0] == 1 and head[17] == 8
    assert struct.unpack("<QQ", head[18:34]) == (len(DOCS16), len(DOCS16) + 1)
    np.testing.assert_array_equal(open_shard(p), ALL16)
    check_windows([p], ALL16)
    p32 = write_megatron(tmp_path / "m32.bin", DOCS32, np.int32)
    assert p32.with_suffix(".idx").read_bytes()[17] == 4
    np.testing.assert_array_equal(open_shard(p32), ALL32)


def test_llmc_header(tmp_path):
    p = write_llmc(tmp_path / "l_train_000000.bin", ALL16)
    header = np.fromfile(p, dtype="<i4", count=256)
    assert header[0] == 20240520 and header[1] == 1 and header[2] == len(ALL16) and not header[3:].any()
    assert p.stat().st_size == 1024 + 2 * len(ALL16)
    np.testing.assert_array_equal(open_shard(p), ALL16)
    check_windows([p], ALL16)
    p3 = write_llmc(tmp_path / "l3.bin", ALL32, magic=20240801)
    np.testing.assert_array_equal(open_shard(p3), ALL32)
    # a truncated file is refused, not misread
    raw = p.read_bytes()
    (tmp_path / "bad.bin").write_bytes(raw[:-2])
    with pytest.raises(ValueError, match="llm.c header"):
        open_shard(tmp_path / "bad.bin")


def test_nanogpt_raw_bin(tmp_path):
    ALL16.astype("<u2").tofile(tmp_path / "train.bin")
    np.testing.assert_array_equal(open_shard(tmp_path / "train.bin"), ALL16)


def test_windows_span_shards_without_crossing(tmp_path):
    a = write_datatrove(tmp_path / "a.ds", [np.arange(100)])
    b = write_megatron(tmp_path / "b.bin", [np.arange(1000, 1050)])
    c = write_llmc(tmp_path / "c.bin", np.arange(2000, 2010))  # shorter than a window: skipped
    w = TokenWindows([a, b, c], seq_len=20)
    assert w.n_windows == (100 - 20) + (50 - 20)
    np.testing.assert_array_equal(w.window(79), np.arange(79, 100))
    np.testing.assert_array_equal(w.window(80), np.arange(1000, 1021))
    everything = w.batch(np.arange(w.n_windows))
    assert all((np.diff(row) == 1).all() for row in everything)  # no window straddles two shards


def test_layout_manifest_and_sampler(tmp_path):
    d = write_token_dir(tmp_path / "tok", [np.arange(500)], [np.arange(200)], vocab_size=512, fmt="megatron")
    assert read_manifest_vocab(d) == 512
    assert [p.name for p in split_shards(d, "train")] == ["shard_00000.bin"]
    w = TokenWindows(split_shards(d, "train"), 32)
    s1 = w.random_starts(seed=1, step=5, micro=0, n=8)
    assert (s1 == w.random_starts(seed=1, step=5, micro=0, n=8)).all()  # a pure function of its key
    assert not (s1 == w.random_starts(seed=1, step=6, micro=0, n=8)).all()
    assert not (s1 == w.random_starts(seed=1, step=5, micro=1, n=8)).all()
    assert s1.min() >= 0 and s1.max() < w.n_windows
    ev = w.eval_starts(10)
    assert ev[0] == 0 and ev[-1] == w.n_windows - 1 and len(set(ev)) == 10
    # nanoGPT's flat layout works too; a missing split is a clear error
    (tmp_path / "flat").mkdir()
    np.arange(300, dtype="<u2").tofile(tmp_path / "flat" / "train.bin")
    assert split_shards(tmp_path / "flat", "train")[0].name == "train.bin"
    with pytest.raises(FileNotFoundError, match="no val shards"):
        split_shards(tmp_path / "flat", "val")
    (tmp_path / "flat" / "manifest.json").write_text(json.dumps({"kind": "x"}))
    assert read_manifest_vocab(tmp_path / "flat") is None
