"""PII redaction (curation/filters/pii.py) on real web text of the shared data and on tricky negatives."""

from __future__ import annotations

import gzip
import json

import pytest

from corpusmill.curation.document import is_alive, new_document, signals
from corpusmill.curation.filters.pii import EMAIL_REPLACEMENT, IPV4_REPLACEMENT, PHONE_REPLACEMENT, PII
from corpusmill.curation.registry import build_stage
from corpusmill.curation.stage import apply_stage


@pytest.fixture(scope="module")
def webtext(shared_data) -> list[str]:
    out = []
    for f in sorted((shared_data / "webtext").glob("*.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            out += [json.loads(line).get("text") or "" for line in fh]
    return out


def _find(texts: list[str], needle: str) -> str:
    return next(t for t in texts if needle in t)


@pytest.mark.parametrize("needle", [
    "m.domagalska@uwm.edu.pl",        # Polish park page: e-mail and "tel. 89 523-43-01"
    "+48 89 742 14 05",               # "faksem: +48 89 742 14 05"
    "+441474556909",                  # "Reach Us +441474556909"
    "Telefon: +49 561 9804848",
    "021 685 027",                    # Croatian national number after "Telefon:"
    "+420 777 098 098",
    "330-788-8771",                   # North-American number without a keyword
    "(661) 845-3814",
    "195.234.74.142",                 # public IPv4 in a server log
])
def test_real_pii_is_replaced(webtext, needle):
    text = _find(webtext, needle)
    d = apply_stage(PII(), new_document(text, "webtext/x.jsonl.gz", 0, source_kind="web"))
    assert is_alive(d)
    assert needle.split(": ")[-1] not in d.text
    s = signals(d)
    assert s["pii.emails"] + s["pii.phones"] + s["pii.ipv4"] >= 1


def test_counts_and_replacements_cycle_per_document():
    p = PII()
    text = "a@b.org, c@d.org and e@f.org; call +44 20 7946 0958 or (212) 555-7788; host 8.8.8.8"
    out, n = p.redact(text)
    assert n == {"emails": 3, "ipv4": 1, "ipv6": 0, "phones": 2}
    assert out == (f"{EMAIL_REPLACEMENT[0]}, {EMAIL_REPLACEMENT[1]} and {EMAIL_REPLACEMENT[0]}; call "
                   f"{PHONE_REPLACEMENT[0]} or {PHONE_REPLACEMENT[1]}; host {IPV4_REPLACEMENT[0]}")
    assert p.redact(text) == (out, n)  # the cycle restarts with every document: deterministic


@pytest.mark.parametrize("text", [
    "Released 2019-07-17 at 12:30:45 UTC (build 20230127195946-20230).",      # dates, times, timestamps
    "Upgrade to version 1.2.3.4, or v10.0.0.1 for the firmware 5.1.2.600.",   # version numbers
    "Lived 1863-1945; ISBN 978-0-14-143951-8; coordinates 35.207487 -97.447906; pi 3.14159265358979.",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",                                    # calendars
    "let x = a::b; std::vector<int> v; impl dead::beef for T {}; int y = 0x1234; int z[] = {1, 2, 3};",
    "OID 1.3.6.1.4.1.311 and DOI 10.1.1.8.9, SN 605044501-00150, tel 2024-06-02",
    "private hosts 10.200.2.15, 192.168.0.1, 127.0.0.1, ::1 and fe80::1 stay (as datatrove)",
    "user@localhost and name at example dot com are no addresses",
])
def test_tricky_negatives_untouched(text):
    out, n = PII().redact(text)
    assert out == text and not any(n.values()), n


def test_ipv6_public_only_and_switches():
    out, n = PII().redact("resolver 2001:4860:4860::8888, link fe80::1")
    assert n["ipv6"] == 1 and "2001:4860" not in out and "fe80::1" in out
    out, n = PII(only_public_ips=False, emails=False).redact("a@b.org 10.0.0.1 fe80::1:2:3")
    assert n == {"emails": 0, "ipv4": 1, "ipv6": 1, "phones": 0} and "a@b.org" in out


def test_web_text_totals(webtext):
    """All 727 documents of the shared web text: 31 contain PII; every phone hit was read by hand."""
    p = PII()
    tot = {"emails": 0, "ipv4": 0, "ipv6": 0, "phones": 0}
    docs = 0
    for t in webtext:
        _, n = p.redact(t)
        docs += any(n.values())
        for k, v in n.items():
            tot[k] += v
    assert len(webtext) == 727
    assert (docs, tot) == (31, {"emails": 53, "ipv4": 1, "ipv6": 0, "phones": 35})


def test_registered_with_options():
    st = build_stage("pii", {"phones": False, "email_replacement": "<EMAIL>", "sources": ["web"]})
    d = apply_stage(st, new_document("write to a@b.org or +44 20 7946 0958", "x", 0, source_kind="web"))
    assert d.text == "write to <EMAIL> or +44 20 7946 0958"
    with pytest.raises(TypeError):
        PII(email_replacement=[])
