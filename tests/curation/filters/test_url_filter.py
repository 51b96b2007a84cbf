"""URL filter (curation/filters/url.py): block lists by path, the shipped LDNOOBW word list, datatrove's
integrated lists, on the URLs of the shared web text."""

from __future__ import annotations

import gzip
import json

import pytest

from corpusmill.curation.document import is_alive, new_document, signals
from corpusmill.curation.filters.url import DEFAULT_BANNED_WORDS, URLFilter
from corpusmill.curation.registry import build_stage, validate_params
from corpusmill.curation.stage import apply_stage


@pytest.fixture(scope="module")
def web_urls(shared_data) -> list[str]:
    out = []
    for f in sorted((shared_data / "webtext").glob("*.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                o = json.loads(line)
                url = (o.get("metadata") or {}).get("url") or (o["id"] if o["id"].startswith("http") else None)
                out.append(url)
    return out


def _run(stage, url, **md):
    d = new_document("some text", "webtext/x.jsonl.gz", 0, source_kind="web", **md)
    if url is not None:
        d.metadata["url"] = url
    return apply_stage(stage, d)


def test_default_list_on_shared_urls(web_urls):
    """Every one of the 727 web documents has a URL; the shipped word list drops 2 of them."""
    assert len(web_urls) == 727 and all(web_urls)
    st = URLFilter()
    dropped = [(u, _run(st, u).metadata.get("cm_reason")) for u in web_urls]
    dropped = [(u, r) for u, r in dropped if r]
    assert dropped == [
        ("www.flechazosbdsm.com/eventos-y-fiestas-bdsm/action~oneday/exact_date~1556236800/cat_ids~97,155/"
         "request_format~html/tag_ids~118", "hard_blacklisted"),
        ("squammie.wordpress.com/tag/sex-drive/", "hard_blacklisted"),
    ]
    assert DEFAULT_BANNED_WORDS.read_text().startswith("# Banned URL words")


def test_users_domain_and_url_files(tmp_path, web_urls):
    doms = tmp_path / "domains.txt"
    doms.write_text("# my list\nwikidot.com\nnews.example.co.uk\n")
    urls = tmp_path / "urls.txt"
    urls.write_text("http://100kinvesting.com/2016/11/28/first-teleconference-calls-invoice-factoring/\n")
    st = build_stage("url_filter", {"domains_file": str(doms), "urls_file": str(urls), "banned_words_file": None})
    reasons = [_run(st, u).metadata.get("cm_reason") for u in web_urls]
    assert reasons.count("url") == 1
    n_wikidot = sum("wikidot.com/" in u for u in web_urls)
    assert n_wikidot > 0 and reasons.count("domain") == n_wikidot
    assert _run(st, "https://news.example.co.uk/a").metadata["cm_reason"] == "subdomain"
    assert _run(st, "https://eu.news.example.co.uk/a").metadata["cm_reason"] == "subdomain"  # below a listed sub-domain
    assert is_alive(_run(st, "https://sport.example.co.uk/a"))  # a sibling is not listed


def test_words_soft_words_subwords_and_missing_url():
    st = URLFilter(banned_words_file=None, banned_words=["casino"], soft_banned_words=["free", "bonus"],
                   banned_subwords=["xxx"], missing_url="drop")
    assert _run(st, "http://a.com/online-casino/").metadata["cm_reason"] == "hard_blacklisted"
    assert is_alive(_run(st, "http://a.com/casinoroyale/"))  # a whole URL word, not a substring
    assert _run(st, "http://a.com/free/bonus").metadata["cm_reason"] == "soft_blacklisted"
    d = _run(st, "http://a.com/free")
    assert is_alive(d) and signals(d)["url_filter.soft_banned_words"] == 1
    assert _run(st, "http://a.com/bigxxxsite").metadata["cm_reason"] == "blacklisted_subword"
    assert _run(st, None).metadata["cm_reason"] == "no_url"
    # an http(s) original_id counts as the URL (dolma files keep the URL as the id)
    assert _run(st, None, original_id="https://x.org/casino").metadata["cm_reason"] == "hard_blacklisted"
    assert is_alive(_run(URLFilter(), None))  # missing_url: keep (books, Wikipedia)


@pytest.mark.slow
def test_datatrove_lists_offline():
    st = URLFilter(banned_words_file=None, datatrove_lists=True)
    st.setup()
    assert len(st._lists["domains"]) > 1_000_000
    assert _run(st, "https://pornhub.com/x").metadata["cm_reason"] == "domain"
    assert is_alive(_run(st, "https://en.wikipedia.org/wiki/Sherlock_Holmes"))


def test_bad_options_name_the_key(tmp_path):
    with pytest.raises(TypeError, match="domains_file"):
        validate_params("url_filter", {"domains_file": str(tmp_path / "nope.txt")})
    with pytest.raises(TypeError, match="missing_url"):
        validate_params("url_filter", {"missing_url": "maybe"})
