"""URL filter (``url_filter``): datatrove's ``URLFilter`` convention over block-list files.

A document is dropped when its URL's registered domain (``domain``) or one of its sub-domains
(``subdomain``) is listed, the whole URL is listed (``url``), a banned word is one of the URL's words
(``hard_blacklisted``), at least ``soft_word_threshold`` soft-banned words are (``soft_blacklisted``),
or a banned sub-word occurs in the normalised URL (``blacklisted_subword``). Lists are one entry a
line, ``#`` starts a comment. The shipped default is a banned-word list from LDNOOBW (CC-BY-4.0);
``datatrove_lists: true`` adds the lists inside the installed datatrove wheel (the UT1 blacklists,
CC BY-SA 4.0, as FineWeb ran them). Sources, licences and measurements: docs/filters.md, "URL filter".
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Iterable
from pathlib import Path

from datatrove.data import Document

from corpusmill.curation.text.languages import language_set
from corpusmill.curation.stage import Filter

_NORMALIZER = re.compile(r"[^a-zA-Z0-9]+")  # datatrove's url_filter.normalizer
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_BANNED_WORDS = DATA_DIR / "url_banned_words.txt"


def normalize(text: str) -> str:
    return _NORMALIZER.sub("", text).lower()


def read_list(path: str | os.PathLike, do_normalize: bool) -> set[str]:
    """One entry a line; blank lines and ``#`` comments skipped; words normalised as datatrove does."""
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            t = line.strip()
            if t and not t.startswith("#"):
                out.add(normalize(t) if do_normalize else t.lower())
    out.discard("")
    return out


def _items(v: Iterable[str] | str | None, what: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        v = [v]
    v = list(v)
    if not all(isinstance(x, str) for x in v):
        raise TypeError(f"{what}: expected a list of strings, got {v!r}")
    return v


def _datatrove_lists() -> dict[str, set[str]]:
    """The URL lists datatrove ships in its wheel (read in place, the tarball is not extracted to disk)."""
    from datatrove.utils._import_utils import ASSETS_PATH

    out: dict[str, set[str]] = {"domains": set(), "urls": set()}
    with tarfile.open(os.path.join(ASSETS_PATH, "url_filterblacklistsv0_3_0.tar.gz"), "r:gz") as tar:
        for m in tar.getmembers():
            name = os.path.basename(m.name)
            if m.isfile() and name in out:
                data = tar.extractfile(m).read().decode("utf-8", errors="replace")
                out[name] = {x.strip().lower() for x in data.splitlines() if x.strip() and not x.startswith("#")}
    for key, fname in (("banned_words", "banned_words.txt"), ("banned_subwords", "banned_subwords.txt"),
                       ("soft_banned_words", "soft_banned_words.txt")):
        out[key] = read_list(os.path.join(ASSETS_PATH, fname), do_normalize=True)
    return out


class URLFilter(Filter):
    """Drop documents by their URL (``metadata["url"]``, else an ``http(s)://`` ``original_id``).

    Args:
        domains_file, urls_file: the user's block lists (a listed domain blocks its sub-domains too).
        banned_words_file: hard-banned URL words; ``"default"`` = the shipped LDNOOBW list, None = none.
        soft_banned_words_file, banned_subwords_file: datatrove's soft words and sub-words.
        domains, urls, banned_words, soft_banned_words, banned_subwords: extra entries inline.
        soft_word_threshold: soft-banned words needed to drop (datatrove: 2).
        datatrove_lists: also use the lists datatrove ships (FineWeb's URL filter).
        missing_url: ``"keep"`` (books, Wikipedia) or ``"drop"`` (reason ``no_url``).

    Signals (``url_filter.*``): ``has_url``, ``banned_words``, ``soft_banned_words`` (URL words found).
    """

    name = "url_filter"

    def __init__(
        self,
        domains_file: str | None = None,
        urls_file: str | None = None,
        banned_words_file: str | None = "default",
        soft_banned_words_file: str | None = None,
        banned_subwords_file: str | None = None,
        domains: Iterable[str] | None = None,
        urls: Iterable[str] | None = None,
        banned_words: Iterable[str] | None = None,
        soft_banned_words: Iterable[str] | None = None,
        banned_subwords: Iterable[str] | None = None,
        soft_word_threshold: int = 2,
        datatrove_lists: bool = False,
        missing_url: str = "keep",
        languages: Iterable[str] | str | None = None,
    ):
        if missing_url not in ("keep", "drop"):
            raise ValueError(f"missing_url must be 'keep' or 'drop', got {missing_url!r}")
        if isinstance(soft_word_threshold, bool) or not isinstance(soft_word_threshold, int) or soft_word_threshold < 1:
            raise ValueError(f"soft_word_threshold must be an integer >= 1, got {soft_word_threshold!r}")
        self.files = {
            "domains": domains_file, "urls": urls_file,
            "banned_words": str(DEFAULT_BANNED_WORDS) if banned_words_file == "default" else banned_words_file,
            "soft_banned_words": soft_banned_words_file, "banned_subwords": banned_subwords_file,
        }
        for key, path in self.files.items():
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"{key}_file: no such file {path!r} (one entry a line)")
        self.inline = {
            "domains": {x.strip().lower() for x in _items(domains, "domains")},
            "urls": {x.strip() for x in _items(urls, "urls")},
            "banned_words": {normalize(x) for x in _items(banned_words, "banned_words")},
            "soft_banned_words": {normalize(x) for x in _items(soft_banned_words, "soft_banned_words")},
            "banned_subwords": {normalize(x) for x in _items(banned_subwords, "banned_subwords")},
        }
        self.soft_word_threshold = soft_word_threshold
        self.datatrove_lists = bool(datatrove_lists)
        self.missing_url = missing_url
        self._lists: dict[str, set[str]] | None = None
        self._automaton = None
        self._extract = None
        self.languages = language_set(languages)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_lists"] = state["_automaton"] = state["_extract"] = None
        return state

    def setup(self) -> None:
        if self._lists is not None:
            return
        import ahocorasick
        from tldextract import TLDExtract

        lists = {k: set(v) for k, v in self.inline.items()}
        for key, path in self.files.items():
            if path is not None:
                lists[key] |= read_list(path, do_normalize=key not in ("domains", "urls"))
        if self.datatrove_lists:
            for key, values in _datatrove_lists().items():
                lists[key] |= values
        auto = None
        if lists["banned_subwords"]:
            auto = ahocorasick.Automaton(ahocorasick.STORE_INTS)
            for i, w in enumerate(sorted(lists["banned_subwords"])):
                auto.add_word(w, i)
            auto.make_automaton()
        # the public-suffix snapshot inside tldextract: no download at run time
        self._extract = TLDExtract(suffix_list_urls=(), cache_dir=None)
        self._lists, self._automaton = lists, auto

    @staticmethod
    def url_of(doc: Document) -> str | None:
        md = doc.metadata
        url = md.get("url")
        if isinstance(url, str) and url.strip():
            return url.strip()
        oid = md.get("original_id")
        if isinstance(oid, str) and oid.startswith(("http://", "https://")):
            return oid
        return None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._lists is None:
            self.setup()
        s = self.signals(doc)
        url = self.url_of(doc)
        s["has_url"] = url is not None
        if url is None:
            return True if self.missing_url == "keep" else (False, "no_url")
        lists = self._lists
        words = set(_NORMALIZER.split(url.lower()))
        hard = len(words & lists["banned_words"])
        soft = len(words & lists["soft_banned_words"])
        s["banned_words"] = hard
        s["soft_banned_words"] = soft
        info = self._extract(url)
        registered = getattr(info, "top_domain_under_public_suffix", None) or info.registered_domain
        if registered and registered.lower() in lists["domains"]:
            return False, "domain"
        host = (info.fqdn or "").lower()
        while host and host != (registered or "").lower():  # the host and every parent below the domain
            if host in lists["domains"]:
                return False, "subdomain"
            host = host.partition(".")[2]
        if url in lists["urls"]:
            return False, "url"
        if hard:
            return False, "hard_blacklisted"
        if soft >= self.soft_word_threshold:
            return False, "soft_blacklisted"
        if self._automaton is not None and next(self._automaton.iter(normalize(url)), None) is not None:
            return False, "blacklisted_subword"
        return True
