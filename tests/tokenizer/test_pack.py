"""pack: shards readable by datatrove / Megatron / llm.c readers, deterministic split and reruns, verify."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from corpusmill.tokenizer.fast_encode import Encoder
from corpusmill.tokenizer.formats import ShardWriter, megatron_idx_bytes
from corpusmill.tokenizer.pack import pack, verify
from corpusmill.tokenizer.reader import id_unit
from corpusmill.tokenizer.sample_corpus import write_sample_corpus
from corpusmill.tokenizer.shards import open_shards
from corpusmill.tokenizer.train import train_tokenizer

SEQ = 127  # blocks of 128 tokens


@pytest.fixture(scope="module")
def setup(shared_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("pack")
    write_sample_corpus(shared_data, d / "curated", max_bytes=1_500_000, files=2)
    train_tokenizer(str(d / "curated"), 2048, d / "tok", heldout_fraction=0, report=False)
    return d


def _pack(setup, out, **kw):
    kw.setdefault("workers", 1)
    return pack(setup / "tok", str(setup / "curated" / "*.parquet"), setup / out, **kw)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _corpus(setup):
    t = pq.read_table(sorted((setup / "curated").glob("*.parquet")))
    return dict(zip(t.column("id").to_pylist(), t.column("text").to_pylist()))


@pytest.fixture(scope="module")
def ds_pack(setup):
    return _pack(setup, "ds", fmt="ds", seq_len=SEQ, shard_tokens=100_000, val_fraction=0.05, shuffle=True, seed=7)


def test_ds_manifest_and_fixed_size_shards(setup, ds_pack):
    m = ds_pack
    train = m["splits"]["train"]
    sizes = [s["num_tokens"] for s in train["shards"]]
    assert len(sizes) > 3 and m["shard_tokens"] % (SEQ + 1) == 0 and m["shard_tokens"] <= 100_000
    assert all(n == m["shard_tokens"] for n in sizes[:-1]) and 0 < sizes[-1] <= m["shard_tokens"]
    assert sum(sizes) == train["num_tokens"] and m["total_tokens"] == train["num_tokens"] + m["splits"]["val"]["num_tokens"]
    assert m["dtype"] == "uint16" and m["encoder"] == "tiktoken" and m["eos_id"] == 0
    assert json.loads((setup / "ds" / "manifest.json").read_text())["total_tokens"] == m["total_tokens"]
    assert any(s["first_piece_continued"] for s in train["shards"])  # documents do cross shard boundaries
    assert not list((setup / "ds").glob(".*")), "no temporary files left behind"


def test_datatrove_reader_gives_identical_blocks(setup, ds_pack):
    from datatrove.utils.dataset import DatatroveFileDataset, DatatroveFolderDataset

    ours = open_shards(setup / "ds", "train")
    theirs = DatatroveFolderDataset(str(setup / "ds" / "train"), seq_len=SEQ, filename_pattern="*.ds", token_size=2)
    assert len(theirs) == ours.num_blocks(SEQ) > 100
    for i in list(range(0, len(theirs), 7)) + [len(theirs) - 1]:
        assert np.array_equal(theirs[i]["input_ids"].numpy(), ours.block(i, SEQ)), i
    # per file too, with positions read from datatrove's .ds.index
    first = setup / "ds" / "train" / ds_pack["splits"]["train"]["shards"][1]["file"]
    f = DatatroveFileDataset(str(first), seq_len=SEQ, token_size=2, return_positions=True)
    per_file = ds_pack["shard_tokens"] // (SEQ + 1)
    for i in range(len(f)):
        item = f[i]
        block = ours.block(per_file + i, SEQ)
        assert np.array_equal(item["input_ids"].numpy(), block)
        pos = item["positions"].numpy()  # restarts at 0 after each EOS
        assert all(pos[k + 1] == 0 for k in np.flatnonzero(block[:-1] == 0))


def test_ds_bytes_equal_datatrove_document_tokenizer(setup, tmp_path):
    """Our unshuffled .ds/.ds.index are byte-identical to what datatrove's own DocumentTokenizer writes."""
    from datatrove.data import Document
    from datatrove.pipeline.tokens import DocumentTokenizer

    m = _pack(setup, "ds_plain", fmt="ds", val_fraction=0, shard_tokens=10**9)
    ours = setup / "ds_plain" / "train" / m["splits"]["train"]["shards"][0]["file"]
    assert ours.name == "train_00000_unshuffled.ds"
    texts = _corpus(setup)
    step = DocumentTokenizer(str(tmp_path), tokenizer_name_or_path=str(setup / "tok" / "tokenizer.json"),
                             eos_token="<|endoftext|>", shuffle_documents=False, batch_size=64)
    step.run((Document(text=t, id=i) for i, t in texts.items()), rank=0)
    theirs = tmp_path / "00000_unshuffled.ds"
    assert ours.read_bytes() == theirs.read_bytes()
    assert Path(str(ours) + ".index").read_bytes() == Path(str(theirs) + ".index").read_bytes()
    assert (Path(str(ours) + ".metadata").read_text().split("\n")[1:] == Path(str(theirs) + ".metadata").read_text().split("\n")[1:])


def _read_idx_from_spec(path: Path):
    """Megatron .idx, parsed field by field from the layout in shard-formats.md."""
    raw = path.read_bytes()
    assert raw[:9] == b"MMIDIDX\x00\x00"
    (version,) = struct.unpack_from("<Q", raw, 9)
    (code,) = struct.unpack_from("<B", raw, 17)
    seq, docs = struct.unpack_from("<QQ", raw, 18)
    off = 34
    lengths = struct.unpack_from(f"<{seq}i", raw, off)
    pointers = struct.unpack_from(f"<{seq}q", raw, off + 4 * seq)
    doc_idx = struct.unpack_from(f"<{docs}q", raw, off + 12 * seq)
    assert len(raw) == off + 12 * seq + 8 * docs  # no sequence modes
    return version, code, list(lengths), list(pointers), list(doc_idx)


def test_megatron_idx_bytes_and_megatrons_reader(setup):
    m = _pack(setup, "meg", fmt="megatron", shard_tokens=150_000, val_fraction=0.05)
    texts = _corpus(setup)
    enc = Encoder(setup / "tok", backend="hf")
    val = pq.read_table(setup / "meg" / "val" / "documents.parquet").column("id").to_pylist()
    for split, info in m["splits"].items():
        for s in info["shards"]:
            bin_path = setup / "meg" / split / s["file"]
            toks = np.fromfile(bin_path, dtype="<u2")
            ends = (np.flatnonzero(toks == 0) + 1).tolist()
            if not ends or ends[-1] != len(toks):
                ends.append(len(toks))  # last document continues in the next shard
            lengths = np.diff([0] + ends).tolist()
            # expected .idx built element by element from the spec
            want = b"MMIDIDX\x00\x00" + struct.pack("<Q", 1) + struct.pack("<B", 8)
            want += struct.pack("<Q", len(lengths)) + struct.pack("<Q", len(lengths) + 1)
            want += b"".join(struct.pack("<i", n) for n in lengths)
            want += b"".join(struct.pack("<q", 2 * p) for p in np.cumsum([0] + lengths[:-1]).tolist())
            want += b"".join(struct.pack("<q", k) for k in range(len(lengths) + 1))
            idx_path = bin_path.with_suffix(".idx")
            assert idx_path.read_bytes() == want
            version, code, lens, ptrs, doc_idx = _read_idx_from_spec(idx_path)
            assert (version, code, lens) == (1, 8, lengths) and doc_idx[0] == 0 and doc_idx[-1] == len(lens)
    # Megatron-LM's own reader, when installed (megatron-core)
    indexed = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    prefix = str(setup / "meg" / "val" / m["splits"]["val"]["shards"][0]["file"])[: -len(".bin")]
    ds = indexed.IndexedDataset(prefix)
    assert len(ds) == len(val) and ds.index.dtype == np.uint16
    for k, doc_id in enumerate(val):
        seq = ds[k]
        assert seq[-1] == 0 and enc.decode(seq[:-1]) == texts[doc_id]
        assert seq[:-1].tolist() == enc.encode_batch_hf([texts[doc_id]])[0]


def test_llmc_header_as_llmc_loader_checks_it(setup):
    m = _pack(setup, "llmc", fmt="llmc", shard_tokens=200_000, val_fraction=0.05)
    for split, info in m["splits"].items():
        for s in info["shards"]:
            path = setup / "llmc" / split / s["file"]
            header = np.fromfile(path, dtype="<i4", count=256)
            assert header[0] == 20240520, "magic"
            assert header[1] == 1, "version"
            ntok = int(header[2])
            assert ntok == s["num_tokens"] and path.stat().st_size == 1024 + 2 * ntok
            assert not header[3:].any()
    ds = open_shards(setup / "llmc", "train")
    first = ds.tokens(0, 1)
    assert first[0] == 0, "llm.c prepends EOT to each document"
    docs = list(ds.iter_documents())
    assert all(d[0] == 0 and (d[1:] != 0).all() for d in docs)
    assert len(docs) == m["splits"]["train"]["num_documents"]


@pytest.mark.parametrize("fmt", ["ds", "megatron", "llmc"])
def test_verify_passes_and_catches_corruption(setup, fmt, tmp_path):
    out = f"v_{fmt}"
    _pack(setup, out, fmt=fmt, seq_len=SEQ, shard_tokens=60_000, val_fraction=0.05, shuffle=True, seed=1)
    res = verify(setup / out, samples=40)
    assert res["ok"], res["errors"]
    assert res["checked"]["sampled"] > 40 and res["checked"]["documents"] == json.loads((setup / out / "manifest.json").read_text())["total_documents"]
    # flip one token in the middle of a shard: the sampled document check or EOS/index check notices
    info = json.loads((setup / out / "manifest.json").read_text())["splits"]["train"]
    path = setup / out / "train" / info["shards"][0]["file"]
    data = bytearray(path.read_bytes())
    start = 1024 if fmt == "llmc" else 0
    for k in range(start + 2, len(data) - 2, 2):  # turn every 3rd token into token 5 (a byte, never EOS)
        if k % 6 == 0 and data[k:k + 2] != b"\x00\x00":
            data[k:k + 2] = (5).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    bad = verify(setup / out, samples=60)
    assert not bad["ok"]


def test_split_is_by_id_hash_and_independent_of_workers_and_shuffle(setup):
    a = _pack(setup, "s1", fmt="ds", val_fraction=0.1, shard_tokens=80_000)
    ids = _corpus(setup)
    want_val = {i for i in ids if id_unit(i) < 0.1}
    val = pq.read_table(setup / "s1" / "val" / "documents.parquet").column("id").to_pylist()
    train = pq.read_table(setup / "s1" / "train" / "documents.parquet").column("id").to_pylist()
    assert set(val) == want_val and set(train) == set(ids) - want_val and len(val) == len(want_val) > 5
    # unshuffled: stream order is file order then row order
    assert train == [i for i in pq.read_table(sorted((setup / "curated").glob("*.parquet"))).column("id").to_pylist() if i not in want_val]
    b = _pack(setup, "s2", fmt="ds", val_fraction=0.1, shard_tokens=80_000, shuffle=True, seed=3, workers=2)
    val2 = pq.read_table(setup / "s2" / "val" / "documents.parquet").column("id").to_pylist()
    assert set(val2) == want_val and val2 != val or len(val) < 3
    assert a["total_tokens"] == b["total_tokens"]


def test_rerun_identical_files_and_seeded_shuffle(setup):
    kw = dict(fmt="ds", seq_len=SEQ, shard_tokens=90_000, val_fraction=0.05, shuffle=True, seed=11)
    _pack(setup, "r1", **kw)
    _pack(setup, "r2", workers=2, **kw)  # process pool: same bytes
    d1, d2 = _digest(setup / "r1"), _digest(setup / "r2")
    assert d1 == d2 and len(d1) > 10
    _pack(setup, "r1", **kw)  # rerun into the same directory replaces it with identical files
    assert _digest(setup / "r1") == d1
    _pack(setup, "r3", **{**kw, "seed": 12})
    assert _digest(setup / "r3") != d1
    order1 = pq.read_table(setup / "r1" / "train" / "documents.parquet").column("id").to_pylist()
    order3 = pq.read_table(setup / "r3" / "train" / "documents.parquet").column("id").to_pylist()
    assert sorted(order1) == sorted(order3) and order1 != order3


def test_reader_blocks_across_shards(setup, ds_pack):
    ds = open_shards(setup / "ds" / "manifest.json", "train")
    stream = np.concatenate([np.fromfile(s.path, dtype="<u2") for s in ds.shards]).astype(np.int64)
    assert len(stream) == ds.num_tokens == len(ds)
    b = ds.shards[0].num_tokens
    assert np.array_equal(ds.tokens(b - 5, b + 5), stream[b - 5:b + 5])
    rng = np.random.default_rng(0)
    xb = ds.random_slices(rng, 16, 200)
    assert xb.shape == (16, 201) and xb.dtype == np.int64 and xb.max() < 2048
    for row in xb:  # each row is a contiguous slice of the stream
        hits = [s for s in range(len(stream) - 200) if stream[s] == row[0] and np.array_equal(stream[s:s + 201], row)]
        assert hits
    assert np.array_equal(next(ds.iter_blocks(SEQ, start=3)), ds.block(3, SEQ))
    with pytest.raises(IndexError):
        ds.block(ds.num_blocks(SEQ), SEQ)
    with pytest.raises(KeyError):
        open_shards(setup / "ds", "test")
    import pickle  # DataLoader workers get a small pickle, not the mapped tokens

    blob = pickle.dumps(ds)
    assert len(blob) < 10_000 and np.array_equal(pickle.loads(blob).block(5, SEQ), ds.block(5, SEQ))


def test_writer_uint32_and_int32_layouts(tmp_path):
    """Vocabularies over 65,536 ids: uint32 .ds / llm.c magic 20240801 v7, int32 Megatron."""
    docs = [np.array([70000, 5, 0]), np.array([1, 2, 3, 99999, 0]), np.array([65536, 0])]
    flat, lens = np.concatenate(docs), [len(d) for d in docs]
    for fmt, dtype in [("ds", np.uint32), ("megatron", np.int32), ("llmc", np.uint32)]:
        w = ShardWriter(tmp_path / fmt, "train", fmt, np.dtype(dtype), shard_tokens=6)
        w.add(flat, lens)
        shards = w.close()
        assert [s["num_tokens"] for s in shards] == [6, 4] and shards[1]["first_piece_continued"]
        f0 = tmp_path / fmt / shards[0]["file"]
        if fmt == "llmc":
            h = np.fromfile(f0, dtype="<i4", count=3)
            assert h.tolist() == [20240801, 7, 6] and f0.stat().st_size == 1024 + 4 * 6
            got = np.fromfile(f0, dtype="<u4", offset=1024)
        else:
            got = np.fromfile(f0, dtype="<u4" if fmt == "ds" else "<i4")
        assert got.tolist() == flat[:6].tolist()
        if fmt == "ds":
            assert np.fromfile(str(f0) + ".index", dtype="<u8").tolist() == [3, 6]
            assert (tmp_path / fmt / shards[1]["file"]).with_name(shards[1]["file"] + ".index").read_bytes() == np.array([2, 4], "<u8").tobytes()
        if fmt == "megatron":
            assert f0.with_suffix(".idx").read_bytes() == megatron_idx_bytes(np.array([3, 3]), np.dtype(np.int32))
            assert f0.with_suffix(".idx").read_bytes()[17] == 4


def test_cli_pack_and_verify(setup, capsys):
    from corpusmill.cli import main

    out = setup / "cli"
    assert main(["pack", "--tokenizer", str(setup / "tok"), "--input", str(setup / "curated" / "*.parquet"), "--out", str(out),
                 "--format", "llmc", "--shard-tokens", "200k", "--val-fraction", "0.02", "--workers", "1", "--no-progress"]) == 0
    assert "tokens/s" in capsys.readouterr().out
    assert main(["pack", "--verify", str(out), "--samples", "20"]) == 0
    assert capsys.readouterr().out.startswith("OK: llmc pack")
    assert main(["pack", "--out", str(out)]) == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_failure_midway_leaves_no_partial_pack(setup, tmp_path, workers):
    import shutil

    import pyarrow as pa

    src = sorted((setup / "curated").glob("*.parquet"))[0]
    shutil.copy(src, tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": ["x"], "body": ["no text column"]}), tmp_path / "b.parquet")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="no 'text' column"):
        pack(setup / "tok", str(tmp_path / "*.parquet"), out, workers=workers, shard_tokens=50_000)
    assert list(out.iterdir()) == []
