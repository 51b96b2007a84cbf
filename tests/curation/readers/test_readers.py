"""Readers on the real shared data (../shared/data), and on damaged copies made in tmp_path.

Counts checked against each kind's PROVENANCE.md. A damaged shard must give the right number of
error records at the right positions, and every other record exactly as the clean read gives it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import re
import zlib
from pathlib import Path

import pytest

from corpusmill.curation.document import ERRORED, EVENT, SHARD_END, STATUS
from corpusmill.curation.readers import REGISTRY, Record, get_reader

# ---------------------------------------------------------------------------------------------- helpers


def read(reader: str, path: Path | str, name: str | None = None, **options) -> list[Record]:
    path = str(path)
    with open(path, "rb") as f:
        recs = list(get_reader(reader, **options).records(f, name or path))
    assert [r.position for r in recs] == sorted({r.position for r in recs}), "positions unique and increasing"
    return recs


def read_bytes(reader: str, data: bytes, name: str, **options) -> list[Record]:
    return list(get_reader(reader, **options).records(io.BytesIO(data), name))


def errors(recs: list[Record]) -> list[tuple[int, str]]:
    return [(r.position, r.drop_reason) for r in recs if r.error is not None]


def key(r: Record) -> tuple:
    return (r.position, r.drop_reason, r.metadata.get("url"), r.metadata.get("title"), r.text)


def gzip_members(data: bytes) -> list[tuple[int, int, bytes]]:
    """(start, end, decompressed) of every gzip member."""
    out, i = [], 0
    while i < len(data):
        d = zlib.decompressobj(31)
        body = d.decompress(data[i:])
        end = len(data) - len(d.unused_data)
        out.append((i, end, body))
        i = end
    return out


CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN1_MOJIBAKE = re.compile(r"[\u00c0-\u00ff]")


@pytest.fixture(scope="module")
def cc_sample(shared_data) -> Path:
    return shared_data / "warc" / "CC-MAIN-2020-34_sample.warc.gz"


@pytest.fixture(scope="module")
def cc_clean(cc_sample) -> list[Record]:
    return read("warc", cc_sample)


@pytest.fixture(scope="module")
def cc_members(cc_sample) -> tuple[bytes, list[tuple[int, int, bytes]], list[int]]:
    data = cc_sample.read_bytes()
    members = gzip_members(data)
    responses = [i for i, (_, _, body) in enumerate(members) if b"WARC-Type: response" in body[:400]]
    return data, members, responses


# ---------------------------------------------------------------------------------------------- registry


def test_registry_and_options():
    assert {"warc", "wet", "wikipedia", "books", "jsonl", "parquet"} <= set(REGISTRY)
    for name in ("warc", "wet", "wikipedia", "books", "jsonl", "parquet"):
        with pytest.raises(TypeError):
            get_reader(name, no_such_option=1)
        # a recipe's input-level source_kind reaches every reader as an option
        assert get_reader(name, source_kind="custom").source_kind == "custom"
    assert get_reader("jsonl").source_kind == "jsonl"
    assert get_reader("warc").source_kind == "web" and get_reader("wet").source_kind == "web"
    with pytest.raises(TypeError):
        get_reader("books", split="pages")


def test_compression_helpers():
    import zstandard

    from corpusmill.curation.readers.compression import CorruptInput, compression_of, open_text

    text = "ligne un\nzweite Zeile ü\n" * 2000
    raw = text.encode("utf-8")
    blobs = {
        "a.txt": raw,
        "a.txt.gz": gzip.compress(raw[:9000]) + gzip.compress(raw[9000:]),  # two members
        "a.txt.bz2": bz2.compress(raw),
        "a.txt.zst": zstandard.ZstdCompressor().compress(raw),
    }
    assert [compression_of(n) for n in blobs] == [None, "gzip", "bz2", "zstd"]
    for name, blob in blobs.items():
        assert open_text(io.BytesIO(blob), name).read() == text, name
        if name != "a.txt":
            with pytest.raises(CorruptInput) as e:
                open_text(io.BytesIO(blob[: len(blob) // 2]), name).read()
            assert e.value.kind == f"truncated_{compression_of(name)}"
    with pytest.raises(CorruptInput) as e:
        open_text(io.BytesIO(b"this is not gzip data"), "x.gz").read()
    assert e.value.kind == "corrupt_gzip"


# ---------------------------------------------------------------------------------------------- WARC


def test_warc_cc_sample(cc_clean):
    # PROVENANCE: 16 responses (requests / metadata / warcinfo are not candidates)
    assert [r.position for r in cc_clean] == list(range(16))
    assert not errors(cc_clean) and all(r.drop_reason is None for r in cc_clean)
    for r in cc_clean:
        md = r.metadata
        assert md["needs_extraction"] is True
        assert md["url"].startswith("http") and md["warc_record_id"].startswith("<urn:uuid:")
        assert md["warc_date"].startswith("2020-08") and md["content_type"] == "text/html"
        assert "<" in r.text and "\ufffd" not in r.text


def test_warc_gbk_pages_decode_to_chinese(cc_clean):
    by_url = {r.metadata["url"]: r for r in cc_clean}
    # declared gbk only in a <meta> (no HTTP charset): the page that turns to mojibake if charset is ignored
    gbk = by_url["http://041696.com/15477/list_6_4.html"]
    assert gbk.metadata["charset"] == "gb18030"
    chinese = [r for r in cc_clean if r.metadata["charset"] == "gb18030"]
    assert len(chinese) == 6  # 2 declared gb2312 in HTTP, 4 gbk/gb2312 in <meta> only
    for r in chinese:
        cjk, latin = len(CJK.findall(r.text)), len(LATIN1_MOJIBAKE.findall(r.text))
        assert cjk > 100 and latin < cjk / 100, (r.metadata["url"], cjk, latin)
    title = re.search(r"<title>(.*?)</title>", gbk.text, re.S).group(1)
    assert len(CJK.findall(title)) >= 5 and not LATIN1_MOJIBAKE.search(title)
    # other single-byte charsets
    ru = by_url["http://01spb.ru/company/"]
    assert ru.metadata["charset"] == "cp1251" and len(re.findall(r"[а-яА-Я]", ru.text)) > 1000
    ch = by_url["http://06.live-radsport.ch/fahrerstatistik_801/Anthony_Ravard.html"]
    assert ch.metadata["charset"] == "cp1252" and re.search(r"[äöüÄÖÜ]", ch.text)


def test_warc_whirlwind(shared_data):
    recs = read("warc", shared_data / "warc" / "CC-MAIN-2024-22_whirlwind.warc.gz")
    assert len(recs) == 1
    md = recs[0].metadata
    assert md["url"] == "https://an.wikipedia.org/wiki/Escopete" and md["charset"] == "utf-8"
    assert "<html" in recs[0].text and "Escopete" in recs[0].text


def test_warc_non_html_and_oversize(cc_members, cc_clean):
    data, members, responses = cc_members
    # a real response turned into an image: same length, so Content-Length stays right
    k = responses[3]
    body = members[k][2]
    assert body.count(b"text/html") >= 2
    image = body.replace(b"Content-Type: text/html", b"Content-Type: image/gif", 1)
    image = image.replace(b"WARC-Identified-Payload-Type: text/html", b"WARC-Identified-Payload-Type: image/gif")
    image = image.replace(b"WARC-Identified-Payload-Type: application/xhtml+xml", b"WARC-Identified-Payload-Type: image/gif")
    start, end, _ = members[k]
    recs = read_bytes("warc", data[:start] + gzip.compress(image) + data[end:], "x.warc.gz")
    assert [r.position for r in recs] == list(range(16))
    assert [(r.position, r.drop_reason) for r in recs if r.drop_reason] == [(3, "non_html_payload")]
    assert recs[3].text == "" and recs[3].error is None and recs[3].metadata["content_type"] == "image/gif"

    # records over max_record_bytes are dropped unread, the others are read as usual
    recs = read_bytes("warc", data, "x.warc.gz", max_record_bytes=50_000)
    big = [r.position for r in recs if r.drop_reason == "oversize"]
    assert big and len(big) < 16 and not errors(recs)
    assert all(recs[i].text == "" and recs[i].metadata["url"] == cc_clean[i].metadata["url"] for i in big)
    assert [key(r) for r in recs if r.position not in big] == [key(r) for r in cc_clean if r.position not in big]


def test_warc_truncated_mid_record(cc_members, cc_clean):
    data, members, responses = cc_members
    start, end, _ = members[responses[5]]
    recs = read_bytes("warc", data[: (start + end) // 2], "cut.warc.gz")
    assert errors(recs) == [(5, "truncated_gzip")]
    assert recs[5].metadata["url"] == cc_clean[5].metadata["url"]  # what was readable of the header
    assert [key(r) for r in recs[:5]] == [key(r) for r in cc_clean[:5]]
    assert len(recs) == 6


@pytest.mark.parametrize("where", [0.02, 0.5, 0.97])
def test_warc_flipped_bytes_in_middle_record(cc_members, cc_clean, where):
    data, members, responses = cc_members
    start, end, _ = members[responses[8]]
    bad = bytearray(data)
    p = start + 10 + int((end - start - 18) * where)  # inside the deflate data
    for i in range(p, p + 3):
        bad[i] ^= 0x55
    recs = read_bytes("warc", bytes(bad), "flip.warc.gz")
    assert errors(recs) == [(8, "corrupt_gzip")]
    assert [key(r) for r in recs if r.position != 8] == [key(r) for r in cc_clean if r.position != 8]


def test_warc_random_damage_never_loses_or_garbles_a_record(cc_members, cc_clean):
    """Random byte flips (and sometimes a cut): every intact response before the cut is read exactly,
    no damaged one comes out as a document, and there is at most one error per damaged member."""
    import random

    data, members, _ = cc_members
    clean = {r.metadata["url"]: r.text for r in cc_clean}
    for seed in range(40):
        rng = random.Random(seed)
        bad, hit = bytearray(data), set()
        for _ in range(rng.randint(1, 4)):
            p = rng.randrange(len(bad))
            bad[p] ^= rng.randint(1, 255)
            hit |= {k for k, (a, b, _) in enumerate(members) if a <= p < b}
        cut = rng.randrange(len(bad)) if seed % 3 == 0 else len(bad)
        recs = read_bytes("warc", bytes(bad[:cut]), "fuzz.warc.gz")
        docs = [r for r in recs if r.error is None]
        assert all(clean[r.metadata["url"]] == r.text for r in docs), seed
        intact = [
            re.search(rb"WARC-Target-URI: (\S+)", body).group(1).decode()
            for k, (_, end, body) in enumerate(members)
            if b"WARC-Type: response" in body[:300] and k not in hit and end <= cut
        ]
        assert set(intact) <= {r.metadata["url"] for r in docs}, seed
        assert len(recs) - len(docs) <= len(hit) + 1, seed


def test_warc_damage_outside_responses_is_not_counted(cc_members, cc_clean):
    data, members, responses = cc_members
    start, end, _ = members[responses[8] - 1]  # the request before the 9th response
    bad = bytearray(data)
    bad[(start + end) // 2] ^= 0xFF
    bad[(start + end) // 2 + 1] ^= 0xFF
    recs = read_bytes("warc", bytes(bad), "req.warc.gz")
    assert [key(r) for r in recs] == [key(r) for r in cc_clean]


@pytest.mark.parametrize("delta", [+300, -300])
def test_warc_wrong_content_length(cc_members, cc_clean, delta):
    data, members, responses = cc_members
    start, end, body = members[responses[10]]
    cl = int(re.search(rb"Content-Length: (\d+)", body).group(1))
    body = body.replace(b"Content-Length: %d" % cl, b"Content-Length: %d" % (cl + delta), 1)
    for name, blob in [
        ("cl.warc.gz", data[:start] + gzip.compress(body) + data[end:]),
        ("cl.warc", b"".join(b for _, _, b in members[: responses[10]]) + body + b"".join(b for _, _, b in members[responses[10] + 1 :])),
    ]:
        recs = read_bytes("warc", blob, name)
        assert errors(recs) == [(10, "bad_content_length")], name
        assert [key(r) for r in recs if r.position != 10] == [key(r) for r in cc_clean if r.position != 10]


def test_warc_uncompressed_and_whole_file_gzip(cc_members, cc_clean):
    _, members, _ = cc_members
    plain = b"".join(b for _, _, b in members)
    assert [key(r) for r in read_bytes("warc", plain, "x.warc")] == [key(r) for r in cc_clean]
    assert [key(r) for r in read_bytes("warc", gzip.compress(plain), "x.warc.gz")] == [key(r) for r in cc_clean]
    cut = read_bytes("warc", plain[: len(plain) // 2], "x.warc")
    n = len(cut) - 1
    assert errors(cut) == [(n, "truncated_record")]
    assert [key(r) for r in cut[:n]] == [key(r) for r in cc_clean[:n]]


def test_warc_empty_and_garbage():
    assert read_bytes("warc", b"", "empty.warc.gz") == []
    recs = read_bytes("warc", bytes(range(256)) * 100, "junk.warc.gz")
    assert errors(recs) == [(0, "corrupt_gzip")]


def test_http_payload_helpers():
    import zlib as _zlib

    from corpusmill.curation.readers.warc import decode_html, is_html, parse_http

    page = "<html><head><meta charset=gb2312><title>中文网页</title></head><body>你好，世界</body></html>"
    body = page.encode("gbk")
    resp = parse_http(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: deflate\r\n\r\n" + _zlib.compress(body))
    assert resp.status == 200 and resp.body == body and resp.undecodable is None and resp.charset is None
    assert decode_html(resp.body, resp.charset) == (page, "gb18030")  # from the <meta>
    # a wrong HTTP charset loses to the page's own bytes when they do not decode
    assert decode_html(body, "utf-8")[0] == page
    assert decode_html("<p>Zürich</p>".encode("cp1252"), "iso-8859-1") == ("<p>Zürich</p>", "cp1252")
    assert parse_http(b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n\r\nxx").undecodable
    chunked = parse_http(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<html\r\n1\r\n>\r\n0\r\n\r\n")
    assert chunked.body == b"<html>"
    # no usable Content-Type: Common Crawl's identified type, else a look at the bytes
    bare = parse_http(b"HTTP/1.1 200 OK\r\n\r\n<!DOCTYPE html><html><p>x</p></html>")
    assert is_html(bare, None) and not is_html(bare, "application/pdf")
    assert not is_html(parse_http(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n%PDF-1.4"), "application/pdf")
    assert not is_html(parse_http(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n\r\n\x89PNG"), None)


def test_wet_passes_text_through(shared_data):
    path = shared_data / "warc" / "CC-MAIN-2024-22_whirlwind.warc.wet.gz"
    recs = read("wet", path)
    assert len(recs) == 1 and not errors(recs)
    md = recs[0].metadata
    assert md["url"] == "https://an.wikipedia.org/wiki/Escopete" and md["cc_language"] == "spa"
    assert md["warc_record_id"] == "<urn:uuid:ba729a40-ff84-4085-8d48-0a5b2ee0c42d>"
    assert md["warc_date"] == "2024-05-18T01:58:10Z" and "needs_extraction" not in md
    # the block exactly as stored
    raw = gzip.decompress(path.read_bytes())
    at = raw.index(b"WARC-Type: conversion")
    head_end = raw.index(b"\r\n\r\n", at) + 4
    length = int(re.search(rb"Content-Length: (\d+)", raw[at:head_end]).group(1))
    assert recs[0].text == raw[head_end : head_end + length].decode("utf-8")


# ---------------------------------------------------------------------------------------------- Wikipedia


@pytest.fixture(scope="module")
def enwiki(shared_data) -> Path:
    return shared_data / "wikipedia" / "enwiki-pages-articles1-shortened.xml.bz2"


@pytest.fixture(scope="module")
def enwiki_clean(enwiki) -> list[Record]:
    return read("wikipedia", enwiki)


def test_wikipedia_enwiki_counts(enwiki, enwiki_clean):
    recs = enwiki_clean
    # PROVENANCE: pages=206, ns0_pages=205, redirects=100 (99 in ns 0, plus the one ns-4 page)
    assert [r.position for r in recs] == list(range(206))
    reasons = [r.drop_reason for r in recs]
    assert reasons.count("wiki_namespace") == 1
    assert bz2.decompress(enwiki.read_bytes()).count(b"<redirect ") == 100
    (other,) = [r for r in recs if r.drop_reason == "wiki_namespace"]
    assert other.metadata["wiki_ns"] == 4 and other.metadata["title"].startswith("Wikipedia:")
    assert reasons.count("wiki_redirect") == 99
    articles = [r for r in recs if r.drop_reason is None]
    assert len(articles) == 205 - 99 and not errors(recs)
    for r in articles:
        assert r.text.strip()
        for markup in ("{{", "}}", "[[", "]]", "<ref", "{|", "|}", "<!--"):
            assert markup not in r.text, (r.metadata["title"], markup)
        assert isinstance(r.metadata["page_id"], int) and isinstance(r.metadata["revision_id"], int)
    anarchism = next(r for r in articles if r.metadata["title"] == "Anarchism")
    assert anarchism.metadata["url"] == "https://en.wikipedia.org/wiki/Anarchism"
    assert anarchism.text.startswith("Anarchism is a political philosophy")
    assert "\nEtymology and terminology\n" in anarchism.text  # a heading on its own line
    assert "thumb|" not in anarchism.text and "Category:" not in anarchism.text


def test_wikipedia_inline_templates_keep_their_text(enwiki_clean):
    """Templates inside sentences keep their visible text (curation/readers/wiki_templates.py);
    citations, infoboxes and other templates are still dropped whole."""
    from corpusmill.curation.readers.wikipedia import wikitext_to_text

    assert wikitext_to_text("It covers {{convert|52419|sqmi|km2|abbr=out}} of land.") == "It covers 52419 square miles of land."
    assert wikitext_to_text("{{convert|10|to|20|km}}, {{convert|1|mi|km}}, {{cvt|22|e6acre}}") == (
        "10 to 20 kilometres, 1 mile, 22 million acres"
    )
    assert wikitext_to_text("From {{lang|grc|ἀναρχία}} and {{lang-ru|[[Moscow|Москва]]}}.") == "From ἀναρχία and Москва."
    assert wikitext_to_text("{{Nihongo|'''Aikido'''|合気道|Aikidō|lead=yes}} is") == "Aikido (合気道, Aikidō) is"
    assert wikitext_to_text("{{as of|2010|lc=y}}, {{As of|2015|6|30}}") == "as of 2010, As of 30 June 2015"
    assert wikitext_to_text("{{flag|Georgia (U.S. state)|name=Georgia}} {{chem|H|2|O}} {{frac|3|1|2}}") == "Georgia H2O 3 1/2"
    assert wikitext_to_text("A{{cite web|url=x|title={{lang|fr|t}}}} b{{efn|note {{convert|3|m}}}}.") == "A b."
    assert wikitext_to_text("{{Infobox person|name=X|birth={{birth date|1900|1|1}}}}Text") == "Text"
    # thousands of nested inline templates: dropped past a fixed depth, no RecursionError
    assert wikitext_to_text("a " + "{{lang|fr|" * 3000 + "x" + "}}" * 3000 + " b") == "a b"
    # on the real dump: the Allah article keeps its transliterations, TAI its French name
    by_title = {r.metadata["title"]: r.text for r in enwiki_clean if r.drop_reason is None}
    assert "(TAI, from the French name Temps Atomique International)" in by_title["International Atomic Time"]
    assert 'and ilāh "deity, god"' in by_title["Allah"]


def test_wikipedia_reference_sections_are_dropped(enwiki, enwiki_clean):
    """References, external links, see also, further reading ... are lists, not prose: dropped with
    their subsections; ``drop_sections: []`` keeps them."""
    from corpusmill.curation.readers.wikipedia import wikitext_to_text

    w = "Intro.\n== History ==\nOld.\n=== Early ===\nEarly.\n== See also ==\n* [[Foo]]\n=== Sub ===\nx\n== Legacy ==\nKept.\n"
    assert wikitext_to_text(w) == "Intro.\n\nHistory\n\nOld.\n\nEarly\n\nEarly.\n\nLegacy\n\nKept."
    articles = {r.metadata["title"]: r.text for r in enwiki_clean if r.drop_reason is None}
    anarchism = articles["Anarchism"]
    for heading in ("References", "External links", "Further reading", "See also"):
        assert f"\n{heading}\n" not in anarchism
    assert "\nEtymology and terminology\n" in anarchism and "\nHistory\n" in anarchism
    kept = {r.metadata["title"]: r.text for r in read("wikipedia", enwiki, drop_sections=[]) if r.drop_reason is None}
    assert "\nExternal links\n" in kept["Anarchism"] and len(kept["Anarchism"]) > len(anarchism)


def test_wikipedia_utf16_bgwiki(shared_data):
    recs = read("wikipedia", shared_data / "wikipedia" / "bgwiki-pages-articles-shortened.UTF-16.xml.bz2")
    assert len(recs) == 3
    articles = [r for r in recs if r.drop_reason is None]
    assert len(articles) == 1 and [r.drop_reason for r in recs].count("wiki_namespace") == 2
    art = articles[0]
    cyrillic = len(re.findall(r"[\u0400-\u04ff]", art.text))
    assert cyrillic > 0.5 * len(re.findall(r"\w", art.text))
    assert art.metadata["title"] == "Григориански календар" and art.metadata["wiki"] == "bgwiki"
    assert art.metadata["url"].startswith("https://bg.wikipedia.org/wiki/")


def test_wikipedia_without_siteinfo(shared_data):
    recs = read("wikipedia", shared_data / "wikipedia" / "enwiki-table-markup.xml.bz2")
    assert len(recs) == 5 and all(r.drop_reason is None for r in recs)
    for r in recs:
        assert r.metadata["url"] is None and r.metadata["title"]
        assert "{|" not in r.text and "|-" not in r.text and "||" not in r.text


def test_wikipedia_cut_bz2(enwiki, enwiki_clean):
    data = enwiki.read_bytes()
    recs = read_bytes("wikipedia", data[: int(len(data) * 0.6)], "cut.xml.bz2")
    n = len(recs) - 1
    assert 0 < n < 206
    assert errors(recs) == [(n, "truncated_bz2")]
    assert [key(r) for r in recs[:n]] == [key(r) for r in enwiki_clean[:n]]


def test_wikipedia_malformed_pages(shared_data):
    xml = bz2.decompress((shared_data / "wikipedia" / "enwiki-table-markup.xml.bz2").read_bytes()).decode("utf-8")
    clean = read_bytes("wikipedia", xml.encode(), "t.xml")
    pages = [m.start() for m in re.finditer("<page>", xml)]
    assert len(pages) == 5
    # page 1: broken XML inside; page 3: never closed
    p1 = xml[pages[1] : pages[2]].replace("</title>", "", 1)
    p3 = xml[pages[3] : pages[4]].replace("</page>", "", 1)
    bad = xml[: pages[1]] + p1 + xml[pages[2] : pages[3]] + p3 + xml[pages[4] :]
    recs = read_bytes("wikipedia", bad.encode(), "bad.xml")
    assert errors(recs) == [(1, "bad_xml"), (3, "bad_xml")]
    assert [key(r) for r in recs if r.position in (0, 2, 4)] == [key(r) for r in clean if r.position in (0, 2, 4)]
    # the same dump as UTF-16 without BOM-less guessing trouble, and gzip
    assert [key(r) for r in read_bytes("wikipedia", gzip.compress(xml.encode("utf-16")), "t.xml.gz")] == [key(r) for r in clean]


# ---------------------------------------------------------------------------------------------- books

# first and last lines of each book's own text (after the PG header / before the PG footer)
BOOKS = {
    "pg1661_adventures-of-sherlock-holmes.txt": ("THE ADVENTURES OF SHERLOCK HOLMES", "Walsall, where I believe that she has met with considerable success."),
    "pg24675_ontboezemingen.nl.txt": ("ELK DEEL IS AFZONDERLIJK VERKRIJGBAAR", "book."),
    "pg3261_news-from-nowhere.OLD-nwsnw10.txt": ("NEWS FROM NOWHERE", "{3}  Cirencester and Burford he must have meant."),
    "pg3261_news-from-nowhere.txt": ("NEWS FROM NOWHERE", "{3}  Cirencester and Burford he must have meant."),
    "pg972_devils-dictionary.OLD-dvldc10.txt": ("The Internet Wiretap 1st Online Edition of", "Nature_) that the domestic cow sheds its horn every two years."),
    "pg972_devils-dictionary.txt": ("THE DEVIL'S DICTIONARY", "Nature_) that the domestic cow sheds its horn every two years."),
}
LICENSE_PHRASES = (
    "START OF THIS PROJECT GUTENBERG",
    "START OF THE PROJECT GUTENBERG",
    "END OF THIS PROJECT GUTENBERG",
    "END OF THE PROJECT GUTENBERG",
    "THE SMALL PRINT!",
    "Project Gutenberg License",
    "Project Gutenberg Literary Archive Foundation",
    "Etexts Readable By Both Humans",
    "End of Project Gutenberg",
    "End of the Project Gutenberg",
    "www.gutenberg.org",
)


def test_books_headers_and_footers_removed(shared_data):
    for name, (first, last) in BOOKS.items():
        recs = read("books", shared_data / "books" / name)
        assert len(recs) == 1 and recs[0].drop_reason is None, name
        text = recs[0].text
        lines = [ln for ln in text.split("\n") if ln.strip()]
        assert lines[0].strip() == first, (name, lines[0])
        assert lines[-1].strip() == last, (name, lines[-1])
        for phrase in LICENSE_PHRASES:
            assert phrase.lower() not in text.lower(), (name, phrase)
        md = recs[0].metadata
        assert md["gutenberg_id"] == int(re.match(r"pg(\d+)", name).group(1))
        assert md["title"]


def test_books_metadata_and_latin1(shared_data):
    nl = read("books", shared_data / "books" / "pg24675_ontboezemingen.nl.txt")[0]
    assert nl.metadata["encoding"] in ("cp1252", "latin-1", "iso8859-1")
    assert nl.metadata["pg_language"] == "Dutch" and nl.metadata["author"].startswith("Gabriël")
    assert "GABRIËL" in nl.text and "Zóó" in nl.text and "\ufffd" not in nl.text
    sh = read("books", shared_data / "books" / "pg1661_adventures-of-sherlock-holmes.txt")[0]
    assert sh.metadata["title"] == "The Adventures of Sherlock Holmes"
    assert sh.metadata["author"] == "Arthur Conan Doyle" and sh.metadata["pg_language"] == "English"
    old = read("books", shared_data / "books" / "pg972_devils-dictionary.OLD-dvldc10.txt")[0]
    assert old.metadata["title"] == "The Devil's Dictionary"  # from the 1990s "Etext of ... by" line


def test_books_split(shared_data):
    path = shared_data / "books" / "pg1661_adventures-of-sherlock-holmes.txt"
    whole = read("books", path)[0].text
    chapters = read("books", path, split="chapters")
    assert len(chapters) == 12
    assert chapters[0].metadata["chapter"] == "ADVENTURE I. A SCANDAL IN BOHEMIA"
    assert chapters[11].metadata["chapter"] == "XII. THE ADVENTURE OF THE COPPER BEECHES"
    assert [c.metadata["part"] for c in chapters] == list(range(12)) and chapters[0].metadata["parts"] == 12
    chunks = read("books", path, split="chunks", chunk_chars=20_000)
    assert len(chunks) > 25 and all(len(c.text) <= 20_000 for c in chunks)
    for parts in (chapters, chunks):
        assert " ".join(" ".join(p.text for p in parts).split()) == " ".join(whole.split())


# ---------------------------------------------------------------------------------------------- JSONL


def _dolma_lines(shared_data, n: int) -> list[bytes]:
    path = shared_data / "webtext" / "dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
    return gzip.decompress(path.read_bytes()).splitlines(keepends=True)[:n]


def test_jsonl_dolma(shared_data):
    recs = read("jsonl", shared_data / "webtext" / "dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")
    assert len(recs) == 697 and not errors(recs)
    assert sum(1 for r in recs if not r.text) == 27  # 27 dolma docs have "text": "" (kept; filters decide)
    md = recs[0].metadata
    assert md["original_id"] == "blj5uzvcoa4iybpd5o6kom5nir6ngmoj"
    assert isinstance(md["metadata"], dict) and "text" not in md and "id" not in md
    with_url = read("jsonl", shared_data / "webtext" / "dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", url_field="metadata.url")
    assert with_url[0].metadata["url"] == "16thfleet.wikidot.com/chatter:anewhome"  # as dolma stores it
    docs = read("jsonl", shared_data / "webtext" / "dolma_cc_documents-000.json.gz", source_kind="web")
    assert len(docs) == 10 and not errors(docs)
    assert get_reader("jsonl", source_kind="web").source_kind == "web"


def test_jsonl_bad_lines(shared_data, tmp_path):
    lines = _dolma_lines(shared_data, 40)
    clean = read_bytes("jsonl", b"".join(lines), "c.jsonl")
    bad = lines[:10] + [b'{"id": "broken", "text": "no end\n'] + lines[10:20] + [b'{"id": "no-text"}\n', b"\n", b"[1, 2]\n"] + lines[20:]
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(bad)))
    recs = read("jsonl", path)
    assert errors(recs) == [(10, "bad_json_line"), (21, "missing_text_field"), (22, "bad_json_line")]
    assert recs[21].metadata["original_id"] == "no-text"  # the blank line is not a record
    good = [r for r in recs if r.error is None]
    assert [(r.metadata["original_id"], r.text) for r in good] == [(r.metadata["original_id"], r.text) for r in clean]


def test_jsonl_corrupt_and_cut_compression(shared_data):
    import zstandard

    lines = _dolma_lines(shared_data, 60)
    plain = b"".join(lines)
    clean = read_bytes("jsonl", plain, "c.jsonl")
    assert len(clean) == 60
    z = zstandard.ZstdCompressor().compress(plain)
    assert [key(r) for r in read_bytes("jsonl", z, "c.jsonl.zst")] == [key(r) for r in clean]
    cut = read_bytes("jsonl", z[: len(z) // 2], "c.jsonl.zst")
    assert errors(cut) == [(len(cut) - 1, "truncated_zstd")]
    gz = gzip.compress(plain)
    recs = read_bytes("jsonl", gz[: len(gz) // 2], "c.jsonl.gz")
    n = len(recs) - 1
    assert errors(recs) == [(n, "truncated_gzip")] and 10 < n < 60
    assert [key(r) for r in recs[:n]] == [key(r) for r in clean[:n]]
    # flipped bytes in a one-member gzip: zlib may decode garbage until an invalid code or the final
    # CRC; garbage lines become error records, never documents, and the shard ends with corrupt_gzip
    flipped = bytearray(gz)
    for i in range(len(gz) // 2, len(gz) // 2 + 4):
        flipped[i] ^= 0x55
    recs = read_bytes("jsonl", bytes(flipped), "c.jsonl.gz")
    first_error = errors(recs)[0][0]
    assert 10 < first_error < 60 and recs[-1].drop_reason == "corrupt_gzip"
    assert [key(r) for r in recs[:first_error]] == [key(r) for r in clean[:first_error]]
    assert all(r.error is not None or key(r) == key(clean[r.position]) for r in recs)


# ---------------------------------------------------------------------------------------------- Parquet


def test_parquet(shared_data, tmp_path):
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    clean = read("jsonl", shared_data / "webtext" / "dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", url_field="metadata.url")[:300]
    table = pa.table(
        {
            "id": [r.metadata["original_id"] for r in clean],
            "text": [r.text for r in clean],
            "url": [r.metadata["url"] for r in clean],
            "crawled": [datetime.datetime(2019, 7, 17)] * len(clean),
            "language": ["en"] * len(clean),  # reserved key: not copied
        }
    )
    path = tmp_path / "docs.parquet"
    pq.write_table(table, path, row_group_size=64)
    recs = read("parquet", path)
    assert [r.text for r in recs] == [r.text for r in clean]
    assert recs[5].metadata == {"original_id": clean[5].metadata["original_id"], "url": clean[5].metadata["url"], "crawled": "2019-07-17T00:00:00"}

    class NoSeek(io.RawIOBase):  # e.g. an HTTP stream
        def __init__(self, data):
            self._b = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            return self._b.readinto(b)

    assert [r.text for r in get_reader("parquet").records(NoSeek(path.read_bytes()), "x.parquet")] == [r.text for r in clean]
    missing = read("parquet", path, text_column="content")
    assert errors(missing) == [(0, "missing_text_column")] and len(missing) == 1
    assert errors(read_bytes("parquet", b"not parquet at all", "x.parquet")) == [(0, "corrupt_parquet")]


# ---------------------------------------------------------------------------------------------- Documents


def test_document_ids_are_stable(shared_data):
    def ids(reader, path, **opts):
        with open(path, "rb") as f:
            return [d.id for d in get_reader(reader, **opts).documents(f, str(path), path.name)]

    for reader, path, opts in [
        ("warc", shared_data / "warc" / "CC-MAIN-2020-34_sample.warc.gz", {}),
        ("books", shared_data / "books" / "pg3261_news-from-nowhere.txt", {"split": "chapters"}),
        ("wikipedia", shared_data / "wikipedia" / "enwiki-table-markup.xml.bz2", {}),
    ]:
        first = ids(reader, path, **opts)
        assert first == ids(reader, path, **opts) and len(set(first)) == len(first)


def test_documents_wraps_records_and_ends_shard(cc_members):
    data, members, responses = cc_members
    start, end, _ = members[responses[2]]
    reader = get_reader("warc")
    docs = list(reader.documents(io.BytesIO(data[: (start + end) // 2]), "cut.warc.gz", "warc/cut.warc.gz"))
    assert docs[-1].metadata[EVENT] == SHARD_END and docs[-1].metadata["read"] == 3
    assert [d.metadata["position"] for d in docs[:-1]] == [0, 1, 2]
    assert docs[2].metadata[STATUS] == ERRORED and docs[2].metadata["cm_reason"] == "truncated_gzip"
    assert docs[0].metadata["source_kind"] == "web" and STATUS not in docs[0].metadata


# ------------------------------------------------------------------- WARC: Transfer-Encoding: chunked


def _rewrite_response(member: bytes, body_fn) -> bytes:
    """A WARC response member with ``Transfer-Encoding: chunked`` added to its HTTP head and its body
    replaced by ``body_fn(body)``; the WARC Content-Length is fixed up."""
    whead, _, block = member.partition(b"\r\n\r\n")
    block = block[: -4] if block.endswith(b"\r\n\r\n") else block
    hhead, _, body = block.partition(b"\r\n\r\n")
    block = hhead + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + body_fn(body)
    whead = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(block), whead)
    return whead + b"\r\n\r\n" + block + b"\r\n\r\n"


def _chunk(body: bytes, size: int = 1000) -> bytes:
    parts = [b"%x;ext=1\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\nX-Trailer: y\r\n\r\n"


@pytest.mark.parametrize("how", ["dechunked", "dechunked_blank_line", "chunked"])
def test_warc_chunked_header_on_a_dechunked_body_keeps_the_page(cc_members, cc_clean, how):
    """Archives often store the de-chunked body with the ``Transfer-Encoding: chunked`` header left in;
    only a body that really is chunked is de-chunked, every other body is kept byte for byte."""
    _, members, responses = cc_members
    body_fn = {"dechunked": lambda b: b, "dechunked_blank_line": lambda b: b"\r\n" + b, "chunked": _chunk}[how]
    data = b"".join(
        gzip.compress(_rewrite_response(m, body_fn) if i in responses else m) for i, (_, _, m) in enumerate(members)
    )
    recs = read_bytes("warc", data, "chunked.warc.gz")
    assert len(recs) == len(cc_clean) == 16 and not errors(recs)
    for got, want in zip(recs, cc_clean):
        assert got.drop_reason is None and got.metadata["url"] == want.metadata["url"]
        if how == "dechunked_blank_line":  # the same page after one more line end (a leading BOM is no longer seen)
            assert got.text.lstrip("\r\n\ufeff") == want.text.lstrip("\r\n\ufeff")
        else:
            assert got.text == want.text


def test_dechunk_only_a_valid_chunked_body():
    from corpusmill.curation.readers.http_payload import parse_http

    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    for body in (b"\r\n<html><p>x</p></html>", b"\n\n<html>", b"abc\r\n<html>", b"5\r\n<html>xxx", b"0\r\n\r\n<p>late</p>",
                 b"2\r\n<p\r\nzz\r\n>\r\n0\r\n\r\n", b""):
        assert parse_http(head + body).body == body, body
    assert parse_http(head + b"5\n<html\n1\n>\n0\n\n").body == b"<html>"  # bare LF line ends
    assert parse_http(head + b"5\r\n<html\r\n1\r\n>\r\n").body == b"<html>"  # cut before the last chunk
    assert parse_http(head + b"5\r\n<html\r\n14\r\n><body>cut").body == b"<html><body>cut"  # cut inside a chunk


# ------------------------------------------------------------------- WARC: records that are not candidates


def _shard_end(docs) -> dict:
    (end,) = [d.metadata for d in docs if d.metadata.get(EVENT) == SHARD_END]
    return end


def test_warc_records_that_are_not_responses_are_counted_by_type(cc_members):
    """read + sum(skipped) is the archive's record count, for the real sample and with revisit and
    resource records made from its responses."""
    _, members, responses = cc_members
    n_records = sum(1 for _, _, m in members if m.startswith(b"WARC/"))
    end = _shard_end(get_reader("warc").documents(io.BytesIO(cc_members[0]), "cc.warc.gz", "cc.warc.gz"))
    assert end["read"] == 16 and end["skipped"] == {"warcinfo": 1, "request": 17, "metadata": 16}
    assert end["read"] + sum(end["skipped"].values()) == n_records == 50
    # three responses become a revisit, a resource and a conversion record
    retyped = {responses[1]: b"revisit", responses[4]: b"resource", responses[7]: b"conversion"}
    data = b"".join(
        gzip.compress(m.replace(b"WARC-Type: response", b"WARC-Type: " + retyped[i], 1) if i in retyped else m)
        for i, (_, _, m) in enumerate(members)
    )
    end = _shard_end(get_reader("warc").documents(io.BytesIO(data), "x.warc.gz", "x.warc.gz"))
    assert end["read"] == 13
    assert end["skipped"] == {"warcinfo": 1, "request": 17, "metadata": 16, "revisit": 1, "resource": 1, "conversion": 1}
    wet = _shard_end(get_reader("wet").documents(io.BytesIO(data), "x.warc.gz", "x.warc.gz"))
    assert wet["read"] == 1 and wet["read"] + sum(wet["skipped"].values()) == 50


def test_wet_skips_its_warcinfo_record_visibly(shared_data):
    path = shared_data / "warc" / "CC-MAIN-2024-22_whirlwind.warc.wet.gz"
    with open(path, "rb") as fh:
        end = _shard_end(get_reader("wet").documents(fh, str(path), "x.wet.gz"))
    assert end["read"] == 1 and end["skipped"] == {"warcinfo": 1}


# ------------------------------------------------------------------- Wikipedia: magic words, pathological pages


def _page_xml(title: str, wikitext: str, page_id: int = 1) -> str:
    from xml.sax.saxutils import escape

    return (f"<page><title>{escape(title)}</title><ns>0</ns><id>{page_id}</id><revision><id>{page_id}</id>"
            f"<text>{escape(wikitext)}</text></revision></page>")


def _dump(*pages: str) -> bytes:
    return ("<mediawiki><siteinfo><dbname>enwiki</dbname></siteinfo>" + "".join(pages) + "</mediawiki>").encode()


def test_wikipedia_pagename_magic_words_render_the_title():
    from corpusmill.curation.readers.wikipedia import wikitext_to_text

    lead = "'''{{PAGENAME}}''' is the capital of France."
    assert wikitext_to_text(lead, title="Paris") == "Paris is the capital of France."
    assert wikitext_to_text("{{FULLPAGENAME}} / {{PAGENAME}} / {{PAGENAMEE}} / {{PAGENAME:Foo bar}}",
                            title="Help:New York City") == "Help:New York City / New York City / New_York_City / Foo bar"
    recs = read_bytes("wikipedia", _dump(_page_xml("Paris", lead, 1), _page_xml("Lyon", lead, 2)), "x.xml")
    assert [r.text for r in recs] == ["Paris is the capital of France.", "Lyon is the capital of France."]


def _unclosed_tables(chars: int) -> str:
    row = "{| class=wikitable\n|-\n! Year !! Event\n|-\n| 1900 || The city lies on the river and trades.\n"
    return "Intro sentence of the article.\n" + row * (chars // len(row)) + "\n== History ==\nAfter the tables.\n"


def _nested_templates(chars: int, depth: int = 19) -> str:
    s = "The city lies on the river and has a long history of trade. " * (chars // 60)
    for i in range(depth):
        s = ("{{small|%s}}" if i % 2 else "{{nowrap|%s}}") % s
    return "Lead. " + s + " End."


def _nested_spans(n: int) -> str:
    return "Lead " + '<span class="x">' * n + "deep text" + "</span>" * n + " end."


# (name, page, what must be in the text or None for any outcome, what must not be)
PATHOLOGICAL = {
    "unclosed_tables_60kB": (lambda: _unclosed_tables(60_000), "Intro sentence", ["{|", "|-", "||", "wikitable"]),
    "nested_templates_2MB": (lambda: _nested_templates(2_000_000), "The city lies", ["{{", "}}", "nowrap"]),
    "nested_spans_50k": (lambda: _nested_spans(50_000), "deep text", ["<span", "</span", "class="]),
    "unclosed_links_60kB": (lambda: "Lead. " + "[[Foo|bar " * 6000 + " end.", "Lead", ["[["]),
    "unclosed_braces_60kB": (lambda: "Lead. " + "{{Foo|bar " * 6000 + " end.", "Lead", ["{{"]),
    "unclosed_refs_60kB": (lambda: "Lead. " + "<ref name=x>note " * 4000 + " end.", "Lead", ["<ref"]),
    "unclosed_tags_60kB": (lambda: "Lead. " + "<div><small>a " * 5000 + " end.", "Lead", ["<div", "<small"]),
    "external_links_60kB": (lambda: "Lead. " + "[http://x.example/a b " * 3000 + " end.", "Lead", []),
    "file_captions": (
        lambda: "Lead.\n[[File:Paris.jpg|thumb|250px|The [[Seine]] at {{convert|5|km}}]]\n"
        "[[Image:X.png|left|upright=1.2|alt=x|Broken caption with [[link]]\nNext line stays.\n"
        "[[File:A.jpg|thumb|A [[B|c]] {{lang|fr|d}} e]] and text after.",
        "Next line stays.",
        ["thumb", "250px", "upright", "File:", "Image:", "caption", "|"],
    ),
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_wikipedia_pathological_pages_are_bounded_and_leave_no_markup(name):
    """Each page converts in bounded time (the test's timeout and the per-page budget) to text without
    markup, or becomes a counted ``bad_wikitext`` error; the page after it is read as usual."""
    build, must, must_not = PATHOLOGICAL[name]
    wikitext = build()
    recs = read_bytes("wikipedia", _dump(_page_xml("Bad", wikitext, 1), _page_xml("Good", "Plain '''text'''.", 2)), "x.xml")
    assert [r.position for r in recs] == [0, 1]
    assert recs[1].text == "Plain text." and recs[1].drop_reason is None
    bad = recs[0]
    if bad.drop_reason is not None:
        assert bad.drop_reason == "bad_wikitext" and bad.error, (name, bad.drop_reason)
        return
    assert must in bad.text, (name, bad.text[:300])
    for m in must_not:
        assert m not in bad.text, (name, m, bad.text[:300])


def test_wikipedia_conversion_is_linear_in_page_size():
    """Doubling a pathological page at most about doubles the work (counted in parser input characters
    plus scanner steps, not in seconds: wall times are noisy here)."""
    from corpusmill.curation.readers import wikipedia as wp

    for build in (_unclosed_tables, lambda n: "Lead " + "[[Foo|bar " * (n // 10), lambda n: "x " + "{{a|" * (n // 4),
                  lambda n: _nested_spans(n // 22), lambda n: "<ref>a " * (n // 7)):
        costs = []
        for n in (20_000, 40_000, 80_000):
            wp.COST.clear()
            wp.wikitext_to_text(build(n))
            costs.append(sum(wp.COST.values()))
        assert costs[2] <= 2.6 * costs[1] and costs[1] <= 2.6 * costs[0], costs


def test_wikipedia_real_samples_give_the_same_articles(shared_data):
    """The shared enwiki/bgwiki samples: the same pages kept, dropped and errored as before these
    guards, and no markup left (the one <div> leftover in 'Alkali metal' is gone)."""
    for name, kept in (("enwiki-pages-articles1-shortened.xml.bz2", 106), ("enwiki-table-markup.xml.bz2", 5),
                       ("bgwiki-pages-articles-shortened.UTF-16.xml.bz2", 1)):
        recs = read("wikipedia", shared_data / "wikipedia" / name)
        articles = [r for r in recs if r.drop_reason is None]
        assert len(articles) == kept, name
        for r in articles:
            assert not re.search(r"</?(?:div|span|small|font|center|sup|sub)\b|\[\[|\]\]|\{\{|\}\}|thumb\||\d+px\|", r.text), (
                r.metadata["title"])


def test_wikipedia_utf16_dump_with_a_lost_byte_keeps_the_later_pages(shared_data):
    """Found by tests/fuzz: one byte lost in a UTF-16 dump shifted the alignment of the rest of the
    file and every later page vanished without a count. Decoding re-aligns at each line end."""
    data = bz2.decompress((shared_data / "wikipedia" / "bgwiki-pages-articles-shortened.UTF-16.xml.bz2").read_bytes())
    clean = read_bytes("wikipedia", data, "bg.xml")
    first_text = data.index("<text".encode("utf-16-le"))
    for cut in (first_text + 301, first_text + 9001):  # inside the first page's text
        recs = read_bytes("wikipedia", data[:cut] + data[cut + 1 :], "bg.xml")
        assert [(r.position, r.metadata["title"], r.drop_reason) for r in recs] == [
            (r.position, r.metadata["title"], r.drop_reason) for r in clean]
        assert [r.text for r in recs[1:]] == [r.text for r in clean[1:]]


def test_warc_damage_glued_to_the_next_record_line_loses_only_the_damaged_record(cc_members, cc_clean):
    """Found by tests/fuzz: in an uncompressed .warc, a request record cut to its first byte left "W"
    glued to the next record's "WARC/1.0" line, and the following response was lost with it."""
    _, members, _ = cc_members
    plain = [m for _, _, m in members]
    plain[1] = plain[1][:1]  # the first request record, cut to "W"
    recs = read_bytes("warc", b"".join(plain), "x.warc")
    assert errors(recs) == [(0, "bad_warc_header")]  # the cut record (its type is unreadable)
    assert [key(r)[2:] for r in recs[1:]] == [key(r)[2:] for r in cc_clean]


@pytest.mark.parametrize("damage", ["header_cut", "block_short", "block_cut", "block_cut_before_a_line_end",
                                    "response_cut"])
def test_warc_damaged_request_never_takes_the_next_response_with_it(cc_members, cc_clean, damage):
    """Found by tests/fuzz, uncompressed .warc: a request cut inside its header block, or whose block is
    shorter than its Content-Length, swallowed the response after it."""
    _, members, _ = cc_members
    plain = [m for _, _, m in members]
    if damage == "header_cut":
        plain[1] = plain[1][:200]
    elif damage == "block_short":
        plain[1] = plain[1][:313] + plain[1][350:]
    elif damage == "block_cut":  # cut inside its block: no record end before the next record's "WARC/1.0"
        plain[1] = plain[1][:350]
    elif damage == "block_cut_before_a_line_end":  # the block ends just after the next "WARC/1.0" line
        plain[4] = plain[4][:393]
    else:  # a 109 kB response cut in its HTTP head: its Content-Length runs past the end of the file
        plain[38] = plain[38][:599]
        cut = [r.metadata["url"] for r in cc_clean].index("http://0760.jxtdw.com/area/sanxiang/")
        cc_clean = cc_clean[:cut] + cc_clean[cut + 1 :]
    recs = read_bytes("warc", b"".join(plain), "x.warc")
    assert [key(r)[2:] for r in recs if r.error is None] == [key(r)[2:] for r in cc_clean]
    assert len(errors(recs)) <= 1
