"""Fault injection on damaged copies of the real shared files, through ``corpusmill curate``.

Two data roots with the same layout are built in tmp_path: ``clean/`` holds intact copies of shared
files, ``bad/`` holds the same files damaged (truncated gzip/bz2, flipped bytes in WARC headers, wrong
Content-Length, bad JSON lines, broken wiki XML, Parquet without its text column ...) plus files that
have no clean twin (0-byte files, non-HTML payloads, wrong charsets). Both are curated with the same
recipe; since a document's id is derived from its shard's relative path and its position, every
intact record of a damaged shard must come out with the same id and text as in the clean run.

For every fault: the run completes, the damaged record is an ``error`` row (or a ``dropped`` one where
that is the documented behaviour) in ``RUN/dropped/`` with its file and position, and
``read = kept + dropped + errored`` holds for every shard in ``RUN/manifest/``. docs/reliability.md
lists each fault with what happens and what is lost.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import random
import re
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------------------ helpers


def run_cli(*args: str, timeout: float = 600, check: bool = True, rss: bool = False) -> subprocess.CompletedProcess:
    """``corpusmill ARGS`` in a subprocess (its own process group, killed whole on timeout).

    With ``rss`` the command runs under a small wrapper that prints the peak resident set size (KB)
    of the process tree (``RUSAGE_CHILDREN``: the largest of every waited-for descendant) as the last
    line of stderr: ``MAXRSS <kb>``.
    """
    cmd = [sys.executable, "-m", "corpusmill.cli", *args]
    if rss:
        wrapper = (
            "import resource, subprocess, sys\n"
            "rc = subprocess.call(sys.argv[1:])\n"
            "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(rc)\n"
        )
        cmd = [sys.executable, "-c", wrapper, *cmd]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError(f"corpusmill {' '.join(args)} did not finish in {timeout} s:\n{err[-4000:]}") from None
    res = subprocess.CompletedProcess(cmd, p.returncode, out, err)
    if check and res.returncode != 0:
        raise AssertionError(f"corpusmill {' '.join(args)} failed ({res.returncode}):\n{out[-3000:]}\n{err[-6000:]}")
    return res


def curate(recipe: Path, data_root: Path, out: Path, *extra: str, **kw) -> subprocess.CompletedProcess:
    return run_cli("curate", str(recipe), "--data-root", str(data_root), "--output", str(out), *extra, **kw)


def maxrss_mb(res: subprocess.CompletedProcess) -> float:
    m = re.findall(r"^MAXRSS (\d+)$", res.stderr, re.M)
    assert m, res.stderr[-2000:]
    return int(m[-1]) / 1024


def q(sql: str) -> list[tuple]:
    return duckdb.sql(sql).fetchall()


def manifest(out: Path) -> dict[str, dict]:
    t = pq.read_table(sorted((out / "manifest").glob("*.parquet")))
    return {r["shard"]: r for r in t.to_pylist()}


def table(out: Path, sub: str) -> list[dict]:
    files = sorted((out / sub).glob("*.parquet"))
    return pq.read_table(files).to_pylist() if files else []


def kept(out: Path, shard: str) -> dict[int, dict]:
    """Curated rows of one shard by position."""
    return {r["position"]: r for r in table(out, "curated") if r["source_file"] == shard}


def rejected(out: Path, shard: str) -> dict[int, dict]:
    """Dropped and errored rows of one shard by position."""
    return {r["position"]: r for r in table(out, "dropped") if r["source_file"] == shard}


def errors(out: Path, shard: str) -> list[tuple[int, str, str]]:
    return sorted((p, r["stage"], r["reason"]) for p, r in rejected(out, shard).items() if r["status"] == "error")


def same(row_a: dict, row_b: dict, cols=("id", "text", "url", "title", "position", "source_kind")) -> bool:
    return all(row_a[c] == row_b[c] for c in cols)


def assert_intact(clean_out: Path, bad_out: Path, shard: str, lost: set[int] = frozenset(), upto: int | None = None) -> int:
    """Every record of ``shard`` in the clean run, except positions ``lost`` (and those >= ``upto``),
    is in the damaged run with the same id, text, status and reason. Returns how many were compared."""
    ck, cr = kept(clean_out, shard), rejected(clean_out, shard)
    bk, br = kept(bad_out, shard), rejected(bad_out, shard)
    assert ck or cr, f"clean run has nothing for {shard}"
    n = 0
    for pos, row in ck.items():
        if pos in lost or (upto is not None and pos >= upto):
            continue
        assert pos in bk, f"{shard}: kept document at position {pos} lost in the damaged run"
        assert same(row, bk[pos]), f"{shard}: document at position {pos} differs"
        n += 1
    for pos, row in cr.items():
        if pos in lost or (upto is not None and pos >= upto):
            continue
        assert pos in br and (br[pos]["status"], br[pos]["reason"]) == (row["status"], row["reason"]), (shard, pos)
        n += 1
    return n


def gzip_members(data: bytes) -> list[bytes]:
    """The decompressed bytes of every gzip member (Common Crawl: one WARC record per member)."""
    out, i = [], 0
    while i < len(data):
        d = zlib.decompressobj(31)
        out.append(d.decompress(data[i:]))
        i = len(data) - len(d.unused_data)
    return out


def gz_members(members: list[bytes]) -> bytes:
    return b"".join(gzip.compress(m, 6, mtime=0) for m in members)


def warc_response(uri: str, http_headers: str, body: bytes, payload_type: str | None = None) -> bytes:
    """One WARC/1.0 response record (headers, HTTP block, trailer)."""
    http = http_headers.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body
    h = [
        "WARC/1.0", "WARC-Type: response", f"WARC-Target-URI: {uri}", "WARC-Date: 2024-05-01T00:00:00Z",
        f"WARC-Record-ID: <urn:uuid:{abs(hash(uri)):032x}>", "Content-Type: application/http; msgtype=response",
    ]
    if payload_type:
        h.append(f"WARC-Identified-Payload-Type: {payload_type}")
    h.append(f"Content-Length: {len(http)}")
    return ("\r\n".join(h) + "\r\n\r\n").encode() + http + b"\r\n\r\n"


def responses(members: list[bytes]) -> list[int]:
    return [i for i, m in enumerate(members) if b"WARC-Type: response" in m[:600]]


def uri_of(member: bytes) -> str:
    return re.search(rb"WARC-Target-URI: (\S+)", member).group(1).decode()


FAULT_RECIPE = """\
inputs:
  - {path: warc, glob: '*.warc*', reader: warc}
  - {path: webtext, glob: '*.jsonl*', reader: jsonl}
  - {path: wikipedia, glob: '*.xml*', reader: wikipedia}
  - {path: books, glob: '*.txt', reader: books}
  - {path: parquet, glob: '*.parquet', reader: parquet}
stages: [{stage: extract}]
output: {dir: out}
engine: {tasks: 2, workers: 2}
"""

RU = "Съешь же ещё этих мягких французских булок, да выпей чаю. "
FR = "Le cœur déçu mais l'âme plutôt naïve, Louÿs rêva de crapaüter en canoë au delà des îles. "
ZH = "中华人民共和国是一个位于东亚的国家，首都是北京。"


def _page(title: str, para: str, n: int = 12) -> str:
    return f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>" + (
        f"<p>{para * 3}</p>" * n) + "</article></body></html>"


# (name, WARC record bytes, expected outcome) of the records appended to a copy of the CC sample
def _extra_records() -> list[tuple[str, bytes, str]]:
    rng = random.Random(5)
    png = b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(3000))
    pdf = b"%PDF-1.4\n" + bytes(rng.randrange(256) for _ in range(3000))
    bad_utf8 = _page("Stray bytes", FR).encode("utf-8")
    k = bad_utf8.index(b"<p>") + 40
    bad_utf8 = bad_utf8[:k] + b"\xff\xfe" + bad_utf8[k:]
    return [
        ("image", warc_response("http://example.com/a.png", "HTTP/1.1 200 OK\nContent-Type: image/png\n", png, "image/png"),
         "dropped:non_html_payload"),
        ("pdf-called-html", warc_response("http://example.com/b.pdf", "HTTP/1.1 200 OK\nContent-Type: text/html\n", pdf,
                                          "application/pdf"), "dropped:non_html_payload"),
        ("json", warc_response("http://example.com/api", "HTTP/1.1 200 OK\nContent-Type: application/json\n",
                               b'{"a": [1, 2, 3]}', "application/json"), "dropped:non_html_payload"),
        ("cp1251-declared-utf8", warc_response("http://example.ru/", "HTTP/1.1 200 OK\nContent-Type: text/html; charset=utf-8\n",
                                               _page("Пример", RU).encode("cp1251"), "text/html"), "kept:" + RU.strip()[:30]),
        ("utf8-declared-latin1", warc_response("http://example.fr/", "HTTP/1.1 200 OK\nContent-Type: text/html; charset=iso-8859-1\n",
                                               _page("Exemple", FR).encode("utf-8"), "text/html"), "kept:" + FR[:30]),
        ("gbk-declared-utf8", warc_response("http://example.cn/", "HTTP/1.1 200 OK\nContent-Type: text/html; charset=utf-8\n",
                                            _page("例子", ZH).encode("gbk"), "text/html"), "kept:" + ZH[:10]),
        ("invalid-utf8", warc_response("http://example.fr/stray", "HTTP/1.1 200 OK\nContent-Type: text/html; charset=utf-8\n",
                                       bad_utf8, "text/html"), "kept:" + FR[:30]),
        ("nested-2000", warc_response("http://example.com/deep", "HTTP/1.1 200 OK\nContent-Type: text/html\n",
                                      ("<html><body>" + "<div>" * 2000 + "<p>" + FR * 3 + "</p>" + "</div>" * 2000
                                       + "</body></html>").encode(), "text/html"), "kept:" + FR[:30]),
    ]


BAD_JSONL_LINES = {  # position -> (line replacing the original one, expected error reason)
    2: (b"{not json at all", "bad_json_line"),
    5: (b"[1, 2, 3]", "bad_json_line"),
    8: (b'{"id": "no-text", "url": "http://x"}', "missing_text_field"),
    11: (b'{"id": "num", "text": 42}', "bad_text_field"),
    14: (b'{"id": "latin1", "text": "caf\xe9 cr\xe8me \xff\xfe"}', "undecodable"),
    17: (b'{"id": "cut", "text": "a line cut in the midd', "bad_json_line"),
    23: (b'{"text": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "bad_json_line"),  # RecursionError
}
NUL_LINE = 20  # replaced by a valid document holding NUL and other control characters: kept as is


@pytest.fixture(scope="module")
def fault_data(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("faults")
    clean, bad = base / "clean", base / "bad"
    for root in (clean, bad):
        for sub in ("warc", "webtext", "wikipedia", "books", "parquet"):
            (root / sub).mkdir(parents=True)

    def both(rel: str, clean_bytes: bytes, bad_bytes: bytes) -> None:
        (clean / rel).write_bytes(clean_bytes)
        (bad / rel).write_bytes(bad_bytes)

    # ---- WARC: CC-MAIN-2020-34 sample, 16 responses, one record per gzip member
    cc = (shared_data / "warc" / "CC-MAIN-2020-34_sample.warc.gz").read_bytes()
    members = gzip_members(cc)
    resp = responses(members)

    def damaged(idx: int, old: bytes, new: bytes) -> list[bytes]:
        ms = list(members)
        assert old in ms[resp[idx]], old
        ms[resp[idx]] = ms[resp[idx]].replace(old, new, 1)
        return ms

    both("warc/hdr_magic.warc.gz", cc, gz_members(damaged(3, b"WARC/1.0", b"WA\xd2C/1.0")))
    both("warc/hdr_type.warc.gz", cc, gz_members(damaged(5, b"WARC-Type: response", b"WARC-Type: resp\xafnse")))
    both("warc/hdr_typename.warc.gz", cc, gz_members(damaged(6, b"WARC-Type:", b"WARC-T\xf9pe:")))
    both("warc/hdr_length_name.warc.gz", cc, gz_members(damaged(7, b"Content-Length:", b"Content-Le\xeegth:")))
    for name, idx, delta in (("cl_long", 9, +300), ("cl_short", 11, -300)):
        m = members[resp[idx]]
        cl = int(re.search(rb"Content-Length: (\d+)", m).group(1))
        both(f"warc/{name}.warc.gz", cc, gz_members(damaged(idx, b"Content-Length: %d" % cl, b"Content-Length: %d" % (cl + delta))))
    m = members[resp[2]]
    cl = int(re.search(rb"Content-Length: (\d+)", m).group(1))
    both("warc/cl_plain.warc", b"".join(members),
         b"".join(damaged(2, b"Content-Length: %d" % cl, b"Content-Length: %d" % (cl + 300))))
    # cut inside the 9th response's member
    cut_at = len(gz_members(members[: resp[8]])) + 1000
    both("warc/trunc.warc.gz", cc, cc[:cut_at])
    extra = _extra_records()
    both("warc/extra.warc.gz", cc, cc + gz_members([r for _, r, _ in extra]))
    (bad / "warc" / "empty.warc.gz").write_bytes(b"")

    # ---- JSONL: dolma's 697-line shard
    dolma = gzip.decompress((shared_data / "webtext" / "dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz").read_bytes())
    both("webtext/trunc.jsonl.gz", gzip.compress(dolma, 6, mtime=0), gzip.compress(dolma, 6, mtime=0)[: int(len(gzip.compress(dolma, 6, mtime=0)) * 0.6)])
    lines = dolma.split(b"\n")
    badlines = list(lines)
    for pos, (line, _) in BAD_JSONL_LINES.items():
        badlines[pos] = line
    badlines[NUL_LINE] = json.dumps({"id": "nul", "text": "NUL \u0000 inside, bell \u0007, rtl \u202e, nbsp \u00a0, bom \ufeff."}).encode()
    badlines.insert(30, b"")  # blank and whitespace-only lines are not records: positions do not move
    badlines.insert(31, b"   \t ")
    both("webtext/badlines.jsonl", dolma, b"\n".join(badlines))
    (bad / "webtext" / "empty.jsonl").write_bytes(b"")
    (bad / "webtext" / "empty.jsonl.gz").write_bytes(b"")

    # ---- Wikipedia
    enwiki = (shared_data / "wikipedia" / "enwiki-pages-articles1-shortened.xml.bz2").read_bytes()
    both("wikipedia/trunc.xml.bz2", enwiki, enwiki[: int(len(enwiki) * 0.6)])
    table_xml = bz2.decompress((shared_data / "wikipedia" / "enwiki-table-markup.xml.bz2").read_bytes()).decode()
    pages = table_xml.split("<page>")  # pages[0] is the header; pages[k] is page k-1
    broken = list(pages)
    broken[2] = broken[2].replace("</ns>", "</nz>", 1)  # page 1: mismatched tag
    broken[4] = broken[4].replace("</text>", " &bogus; </text>", 1)  # page 3: undefined entity
    broken_xml = "<page>".join(broken).encode()
    k = broken_xml.index(b"the central part of", broken_xml.index(b"<title>Brahui language")) + 6  # page 4: invalid UTF-8
    broken_xml = broken_xml[:k] + b"\xff\xfe\xc3" + broken_xml[k:]
    both("wikipedia/badpage.xml.bz2", bz2.compress(table_xml.encode()), bz2.compress(broken_xml))
    (bad / "wikipedia" / "empty.xml.bz2").write_bytes(b"")

    # ---- books
    nl = (shared_data / "books" / "pg24675_ontboezemingen.nl.txt").read_bytes()  # ISO-8859-1, says so
    both("books/wrong_charset.txt", nl, nl.replace(b"Character set encoding: ISO-8859-1", b"Character set encoding: UTF-8"))
    news = (shared_data / "books" / "pg3261_news-from-nowhere.txt").read_bytes()
    both("books/stray_bytes.txt", news, news[: len(news) // 2] + b"\xff\xc3" + news[len(news) // 2 :])
    (bad / "books" / "empty.txt").write_bytes(b"")

    # ---- Parquet
    small = [json.loads(x) for x in lines[:40] if x.strip()]
    docs = pa.table({"id": [d["id"] for d in small], "text": [d["text"] for d in small]})
    for root in (clean, bad):
        pq.write_table(docs, root / "parquet" / "docs.parquet", row_group_size=10)
        pq.write_table(docs, root / "parquet" / "notext.parquet")
    pq.write_table(docs.rename_columns(["id", "content"]), bad / "parquet" / "notext.parquet")
    raw_docs = (clean / "parquet" / "docs.parquet").read_bytes()
    both("parquet/cut.parquet", raw_docs, raw_docs[:-200])
    nulls = pa.table({"id": docs["id"], "text": [None if i in (3, 17) else t for i, t in enumerate(docs["text"].to_pylist())]})
    (clean / "parquet" / "nulltext.parquet").write_bytes(raw_docs)
    pq.write_table(nulls, bad / "parquet" / "nulltext.parquet", row_group_size=10)
    (bad / "parquet" / "empty.parquet").write_bytes(b"")
    return clean, bad


@pytest.fixture(scope="module")
def fault_runs(fault_data, tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    clean, bad = fault_data
    base = tmp_path_factory.mktemp("fault-runs")
    recipe = base / "faults.yaml"
    recipe.write_text(FAULT_RECIPE)
    curate(recipe, clean, base / "clean")
    res = curate(recipe, bad, base / "bad")
    return base / "clean", base / "bad", res


# ------------------------------------------------------------------------------------------ the run as a whole


def test_every_shard_of_the_damaged_run_is_accounted_for(fault_data, fault_runs):
    clean_out, out, res = fault_runs
    assert res.returncode == 0 and "accounting: read" in res.stdout
    m = manifest(out)
    files = {str(p.relative_to(fault_data[1])) for p in fault_data[1].rglob("*") if p.is_file()}
    assert set(m) == files, "every input file has its manifest row"
    kept_rows, rej_rows = table(out, "curated"), table(out, "dropped")
    for shard, row in m.items():
        assert row["read"] == row["kept"] + row["dropped"] + row["errored"], shard
        assert row["dropped"] == sum(d["count"] for d in row["dropped_by"]), shard
        assert row["errored"] == sum(d["count"] for d in row["errored_by"]), shard
        assert row["kept"] == sum(r["source_file"] == shard for r in kept_rows), shard
        assert row["dropped"] == sum(r["source_file"] == shard and r["status"] == "dropped" for r in rej_rows), shard
        assert row["errored"] == sum(r["source_file"] == shard and r["status"] == "error" for r in rej_rows), shard
    for r in rej_rows:
        if r["status"] == "error":  # file and position of every error, and what went wrong
            assert r["source_file"] and r["position"] >= 0 and r["error"] and r["reason"], r
    ids = [r["id"] for r in kept_rows + rej_rows]
    assert len(ids) == len(set(ids)), "duplicate ids"
    summary = json.loads((out / "run.json").read_text())
    assert summary["totals"]["identity_holds"] and summary["totals"]["errored"] == sum(r["errored"] for r in m.values())
    assert not [p for p in out.rglob(".tmp-*")], "temporary files left behind"
    assert all(r["errored"] == 0 for r in manifest(clean_out).values()), "the clean twins are clean"


# ------------------------------------------------------------------------------------------ one fault at a time


def test_truncated_gzip_jsonl_keeps_every_line_before_the_cut(fault_runs):
    clean_out, out, _ = fault_runs
    shard = "webtext/trunc.jsonl.gz"
    errs = errors(out, shard)
    assert len(errs) == 1 and errs[0][1:] == ("read", "truncated_gzip")
    cut = errs[0][0]
    assert cut > 300, "lines decoded before the cut are read"
    assert assert_intact(clean_out, out, shard, upto=cut) == cut
    assert manifest(out)[shard]["read"] == cut + 1


def test_truncated_gzip_warc_keeps_every_record_before_the_cut(fault_runs):
    clean_out, out, _ = fault_runs
    shard = "warc/trunc.warc.gz"
    assert errors(out, shard) == [(8, "read", "truncated_gzip")]
    assert assert_intact(clean_out, out, shard, upto=8) == 8


def test_truncated_bz2_wikipedia_keeps_the_pages_before_the_cut(fault_runs):
    clean_out, out, _ = fault_runs
    shard = "wikipedia/trunc.xml.bz2"
    errs = errors(out, shard)
    assert len(errs) == 1 and errs[0][1:] == ("read", "truncated_bz2"), errs
    cut = errs[0][0]
    assert cut > 50, "pages of the complete bz2 blocks are read"
    assert assert_intact(clean_out, out, shard, upto=cut) == cut


@pytest.mark.parametrize(
    "shard, position, reason",
    [
        ("warc/hdr_magic.warc.gz", 3, "bad_warc_header"),  # "WARC/1.0" line damaged
        ("warc/hdr_type.warc.gz", 5, "bad_warc_header"),  # WARC-Type value damaged
        ("warc/hdr_typename.warc.gz", 6, "bad_warc_header"),  # WARC-Type name damaged
        ("warc/hdr_length_name.warc.gz", 7, "bad_warc_header"),  # Content-Length name damaged
        ("warc/cl_long.warc.gz", 9, "bad_content_length"),  # Content-Length 300 bytes too long
        ("warc/cl_short.warc.gz", 11, "bad_content_length"),  # 300 bytes too short
        ("warc/cl_plain.warc", 2, "bad_content_length"),  # too long, in an uncompressed WARC
    ],
)
def test_damaged_warc_header_is_one_error_and_no_other_record_changes(fault_runs, shard, position, reason):
    clean_out, out, _ = fault_runs
    assert errors(out, shard) == [(position, "read", reason)]
    err = rejected(out, shard)[position]
    assert err["url"] == kept(clean_out, shard)[position]["url"], "the damaged record is named by its URL"
    assert assert_intact(clean_out, out, shard, lost={position}) == 15
    assert manifest(out)[shard]["read"] == manifest(clean_out)[shard]["read"] == 16


def test_non_html_payloads_wrong_charsets_and_stray_bytes(fault_runs):
    clean_out, out, _ = fault_runs
    shard = "warc/extra.warc.gz"
    assert assert_intact(clean_out, out, shard) == 16
    k, r = kept(out, shard), rejected(out, shard)
    for i, (name, _, expect) in enumerate(_extra_records()):
        pos = 16 + i
        status, _, detail = expect.partition(":")
        if status == "dropped":
            assert pos in r and (r[pos]["status"], r[pos]["stage"], r[pos]["reason"]) == ("dropped", "read", detail), name
        else:
            assert pos in k, (name, r.get(pos))
            text = k[pos]["text"]
            assert detail in text, (name, text[:300])
            assert text.count("\ufffd") <= 2, name  # stray bytes cost a replacement character each, nothing more
    assert errors(out, shard) == []


def test_broken_wikipedia_xml_is_one_error_per_page(fault_runs):
    clean_out, out, _ = fault_runs
    shard = "wikipedia/badpage.xml.bz2"
    assert errors(out, shard) == [(1, "read", "bad_xml"), (3, "read", "bad_xml")]
    r = rejected(out, shard)
    assert r[1]["title"] == "List of Prison Break characters" and "mismatched tag" in r[1]["error"]
    assert "undefined entity" in r[3]["error"]
    assert assert_intact(clean_out, out, shard, lost={1, 3, 4}) == 2
    # invalid UTF-8 inside a page: decoded with replacement characters, the page is kept
    page4 = kept(out, shard)[4]["text"]
    assert page4.count("\ufffd") >= 1 and page4.replace("\ufffd", "") != ""
    clean4 = kept(clean_out, shard)[4]["text"]
    assert abs(len(page4) - len(clean4)) <= 3


def test_jsonl_bad_lines_are_errors_and_the_others_are_untouched(fault_runs):
    clean_out, out, _ = fault_runs
    shard = "webtext/badlines.jsonl"
    assert errors(out, shard) == sorted((p, "read", reason) for p, (_, reason) in BAD_JSONL_LINES.items())
    n = assert_intact(clean_out, out, shard, lost=set(BAD_JSONL_LINES) | {NUL_LINE})
    assert n == 697 - len(BAD_JSONL_LINES) - 1
    assert kept(out, shard)[NUL_LINE]["text"].startswith("NUL \u0000 inside")
    m = manifest(out)[shard]
    assert (m["read"], m["errored"]) == (697, len(BAD_JSONL_LINES)), "blank lines are not records"
    missing = rejected(out, shard)[8]
    assert missing["url"] == "http://x" and "'text'" in missing["error"]


def test_parquet_without_text_column_truncated_or_with_null_texts(fault_runs):
    clean_out, out, _ = fault_runs
    m = manifest(out)
    # no text column: the whole file is ONE error record (its rows are not read)
    assert errors(out, "parquet/notext.parquet") == [(0, "read", "missing_text_column")]
    assert "content" in rejected(out, "parquet/notext.parquet")[0]["error"]
    assert m["parquet/notext.parquet"]["read"] == 1
    # a cut file has no footer: one corrupt_parquet error
    assert errors(out, "parquet/cut.parquet") == [(0, "read", "corrupt_parquet")]
    # null texts: one error each, every other row as in the clean file
    assert errors(out, "parquet/nulltext.parquet") == [(3, "read", "missing_text_field"), (17, "read", "missing_text_field")]
    assert assert_intact(clean_out, out, "parquet/nulltext.parquet", lost={3, 17}) == m["parquet/nulltext.parquet"]["read"] - 2
    assert assert_intact(clean_out, out, "parquet/docs.parquet") == m["parquet/docs.parquet"]["kept"]


def test_zero_byte_files_get_a_manifest_row(fault_runs):
    _, out, _ = fault_runs
    m = manifest(out)
    for shard in ("warc/empty.warc.gz", "webtext/empty.jsonl", "webtext/empty.jsonl.gz", "wikipedia/empty.xml.bz2"):
        assert (m[shard]["read"], m[shard]["kept"], m[shard]["dropped"], m[shard]["errored"]) == (0, 0, 0, 0), shard
    assert (m["books/empty.txt"]["read"], m["books/empty.txt"]["dropped"]) == (1, 1)
    assert rejected(out, "books/empty.txt")[0]["reason"] == "book_empty"
    assert errors(out, "parquet/empty.parquet") == [(0, "read", "corrupt_parquet")]


def test_books_with_wrong_charset_or_stray_bytes_are_kept(fault_runs):
    clean_out, out, _ = fault_runs
    # a few invalid bytes in a UTF-8 book: two replacement characters, the rest identical
    a, b = kept(clean_out, "books/stray_bytes.txt")[0]["text"], kept(out, "books/stray_bytes.txt")[0]["text"]
    assert b.replace("\ufffd", "") == a and b.count("\ufffd") <= 2
    # a Latin-1 book whose header says UTF-8: decoded by charset detection, same length, and (a
    # documented limit) a few accented letters may come out as their look-alikes in another code page
    a, b = kept(clean_out, "books/wrong_charset.txt")[0]["text"], kept(out, "books/wrong_charset.txt")[0]["text"]
    assert len(a) == len(b)
    differ = sum(x != y for x, y in zip(a, b))
    assert differ <= len(a) // 200, differ


# ------------------------------------------------------------------------------------------ separate runs


def test_100_mb_documents_are_dropped_as_oversize_in_bounded_memory(tmp_path):
    """A 100 MB JSONL line and a 100 MB WARC record: dropped as ``oversize`` (never held whole), the
    documents around them kept, peak RSS of the whole process tree bounded. With the limit raised, the
    100 MB line is kept intact."""
    data = tmp_path / "data"
    (data / "webtext").mkdir(parents=True)
    (data / "warc").mkdir()
    big = 100 << 20
    good = [json.dumps({"id": f"g{i}", "text": f"Good document number {i}. " * 20}) for i in range(10)]
    with open(data / "webtext" / "big.jsonl", "w") as f:
        f.write("\n".join(good[:5]) + "\n")
        f.write('{"id": "huge", "text": "' + "x" * big + '"}\n')
        f.write("\n".join(good[5:]) + "\n")
    page = _page("Small", FR).encode()
    huge_body = b"<html><body><p>" + b"word " * (big // 5) + b"</p></body></html>"
    with gzip.open(data / "warc" / "big.warc.gz", "wb", compresslevel=1) as f:
        f.write(warc_response("http://example.com/1", "HTTP/1.1 200 OK\nContent-Type: text/html\n", page, "text/html"))
    with open(data / "warc" / "big.warc.gz", "ab") as raw:  # the big record as its own member
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as f:
            f.write(warc_response("http://example.com/huge", "HTTP/1.1 200 OK\nContent-Type: text/html\n", huge_body, "text/html"))
        raw.write(gzip.compress(warc_response("http://example.com/3", "HTTP/1.1 200 OK\nContent-Type: text/html\n", page, "text/html")))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "inputs:\n"
        "  - {path: webtext, glob: '*.jsonl', reader: jsonl}\n"
        "  - {path: warc, glob: '*.warc.gz', reader: warc}\n"
        "stages: [{stage: extract}]\noutput: {dir: out}\nengine: {tasks: 1, workers: 1}\n"
    )
    res = curate(recipe, data, tmp_path / "out", rss=True, timeout=300)
    out = tmp_path / "out"
    m = manifest(out)
    assert (m["webtext/big.jsonl"]["read"], m["webtext/big.jsonl"]["kept"]) == (11, 10)
    assert (m["warc/big.warc.gz"]["read"], m["warc/big.warc.gz"]["kept"]) == (3, 2)
    r = rejected(out, "webtext/big.jsonl")
    assert [(p, x["status"], x["reason"]) for p, x in r.items()] == [(5, "dropped", "oversize")]
    r = rejected(out, "warc/big.warc.gz")
    assert [(p, x["status"], x["reason"], x["url"]) for p, x in r.items()] == [(1, "dropped", "oversize", "http://example.com/huge")]
    assert sorted(kept(out, "webtext/big.jsonl")) == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    rss = maxrss_mb(res)
    assert rss < 450, f"peak RSS {rss:.0f} MB for two 100 MB documents that should be skipped"

    # raise the line limit: the 100 MB document is kept whole, still in bounded memory
    recipe.write_text(recipe.read_text().replace("reader: jsonl}", "reader: jsonl, options: {max_line_bytes: 209715200}}"))
    res = curate(recipe, data, tmp_path / "out2", rss=True, timeout=300)
    m = manifest(tmp_path / "out2")
    assert (m["webtext/big.jsonl"]["read"], m["webtext/big.jsonl"]["kept"]) == (11, 11)
    length = q(f"SELECT length(text) FROM read_parquet('{tmp_path}/out2/curated/*.parquet') WHERE position = 5 "
               "AND source_file = 'webtext/big.jsonl'")
    assert length == [(big,)]
    rss = maxrss_mb(res)
    assert rss < 1200, f"peak RSS {rss:.0f} MB to keep one 100 MB document"


def _nested_warc(path: Path, depth: int) -> None:
    deep = ("<html><body>" + "<div>" * depth + "<p>deep text</p>" + "</div>" * depth + "</body></html>").encode()
    with open(path, "wb") as f:
        f.write(gzip.compress(warc_response("http://example.com/deep", "HTTP/1.1 200 OK\nContent-Type: text/html\n", deep, "text/html")))
        f.write(gzip.compress(warc_response("http://example.com/ok", "HTTP/1.1 200 OK\nContent-Type: text/html\n",
                                            _page("Fine", FR).encode(), "text/html")))


@pytest.mark.parametrize(
    "extractor",
    [
        "trafilatura",
        "resiliparse",
    ],
)
def test_100k_nested_divs_do_not_stall_the_run(tmp_path, extractor):
    data = tmp_path / "data"
    (data / "warc").mkdir(parents=True)
    _nested_warc(data / "warc" / "deep.warc.gz", 100_000)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "inputs: [{path: warc, glob: '*.warc.gz', reader: warc}]\n"
        f"stages: [{{stage: extract, extractor: {extractor}}}]\noutput: {{dir: out}}\nengine: {{tasks: 1, workers: 1}}\n"
    )
    curate(recipe, data, tmp_path / "out", timeout=20)  # a few seconds when handled
    m = manifest(tmp_path / "out")["warc/deep.warc.gz"]
    assert m["read"] == 2 and m["read"] == m["kept"] + m["dropped"] + m["errored"]
    assert 1 in kept(tmp_path / "out", "warc/deep.warc.gz"), "the page after the deep one is kept"


def test_beam_gives_the_same_accounting_on_the_damaged_files(fault_data, fault_runs, tmp_path):
    """The whole fault suite on Beam (local runner): same manifests, same kept and rejected records."""
    _, out, _ = fault_runs
    recipe = tmp_path / "faults.yaml"
    recipe.write_text(FAULT_RECIPE)
    curate(recipe, fault_data[1], tmp_path / "beam", "--engine", "beam")
    cols = ("read", "kept", "dropped", "errored", "dropped_by", "errored_by")
    a, b = manifest(out), manifest(tmp_path / "beam")
    assert {k: tuple(v[c] for c in cols) for k, v in a.items()} == {k: tuple(v[c] for c in cols) for k, v in b.items()}
    key = lambda r: (r["id"], r.get("status"), r.get("reason"), r["text"], r["position"])  # noqa: E731
    for sub in ("curated", "dropped"):
        assert sorted(map(key, table(out, sub))) == sorted(map(key, table(tmp_path / "beam", sub))), sub
