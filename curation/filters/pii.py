"""PII redaction (``pii``): e-mail addresses, IPv4 / IPv6 addresses and phone numbers in the text are
replaced by stand-in values, as datatrove's ``PIIFormatter`` does (same e-mail regex, same e-mail and IPv4
replacements, public IPs only by default). Counts per kind are signals; the stage never drops.

Replacements cycle through their tuple per document (datatrove's cycle runs per worker, which would
make the output depend on how documents are dealt to workers). Rules, tricky cases and measurements:
docs/filters.md, "PII".
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from datatrove.data import Document

from corpusmill.curation.text.languages import language_set
from corpusmill.curation.stage import Transform

# datatrove 0.10 PIIFormatter's e-mail pattern, unchanged
EMAIL = re.compile(
    r"\b[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:(?:[A-Za-z0-9](?:["
    r"A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?|\[(?:(?:25[0-5]|2[0-4][0-9]|["
    r"01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?|[A-Za-z0-9-]*[A-Za-z0-9]:)])"
)
# datatrove's IPv4 pattern, fenced: not part of a longer dotted number (1.2.3.4.5, OIDs, 10.1.1.8.9); octets
# are checked by ipaddress (a pattern starting with \d scans several times faster than datatrove's)
IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d)")
# a version / release number that looks like an address: "version 1.2.3.4", "v10.0.0.1", "build 5.1.2.600"
_VERSION_BEFORE = re.compile(r"(?:\bv|\bver\.?|version|release|build|firmware|rev\.?)\s*$", re.I)
# candidates only; ipaddress decides (times like 12:30:45 and C++ a::b are not valid public addresses)
IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,39}(?:\d{1,3}(?:\.\d{1,3}){3})?(?![\w:])")
_IPV6_HINT = re.compile(r"[0-9A-Fa-f]:[0-9A-Fa-f]{1,4}:")
_FULL_GROUP = re.compile(r"(?<![0-9A-Fa-f])(?=[0-9A-Fa-f]*\d)[0-9A-Fa-f]{4}(?![0-9A-Fa-f])")
# phone numbers: international (+CC ...), North-American formatted (555) 123-4567 / 555-123-4567, and
# national numbers with separators only right after a phone keyword (tel., phone, fax, mob., Telefon ...)
_PHONE_INTL = r"\+\d{1,3}(?:[ .\-]?\(?\d{1,5}\)?){1,6}"
_PHONE_NA = r"\(\d{3}\)[ .\-]?\d{3}[ .\-]\d{4}|(?<![\d\-.])\d{3}[.\-]\d{3}[.\-]\d{4}"
_PHONE_NATIONAL = r"\(?\d{1,5}\)?(?:[ .\-/]\d{1,5}){1,5}"
_KEYWORD = (
    r"(?:\b(?:tel|tél|phone|telephone|téléphone|telefon|telefono|teléfono|telefone|fax|faks|faksem|mob|mobile|"
    r"cell|call|ph)\b\.?(?:\s*(?:no|nr|number)\.?)?\s*[:.]?\s*)"
)
PHONE = re.compile(rf"(?<![\w+])(?:{_PHONE_INTL}|{_PHONE_NA})(?![\w])")
PHONE_AFTER_KEYWORD = re.compile(rf"(?i:{_KEYWORD})(?P<nat>{_PHONE_NATIONAL})(?![\w])")
# the keyword pass runs only on texts holding one of these (str.find is much cheaper than the regex)
_KEYWORD_HINTS = ("tel", "tél", "phone", "fax", "faks", "mob", "cell", "call", "ph")
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS = 7, 15  # E.164 allows at most 15 digits

# datatrove PIIFormatter's defaults (example.com / example.org are reserved for examples; the IPs were
# chosen by datatrove as unresponsive); IPv6 from the documentation prefix 2001:db8::/32 (RFC 3849),
# phones from 555-0100..0199, reserved for fiction in the North American plan
EMAIL_REPLACEMENT = ("email@example.com", "firstname.lastname@example.org")
IPV4_REPLACEMENT = ("22.214.171.124", "126.96.36.199", "188.8.131.52", "184.108.40.206", "220.127.116.11",
                    "18.104.22.168")
IPV6_REPLACEMENT = ("2001:db8::1", "2001:db8::2")
PHONE_REPLACEMENT = ("+1-202-555-0100", "+1-202-555-0142")


def _tuple(v: Sequence[str] | str, what: str) -> tuple[str, ...]:
    t = (v,) if isinstance(v, str) else tuple(v)
    if not t or not all(isinstance(x, str) for x in t):
        raise TypeError(f"{what}: expected a string or a non-empty list of strings, got {v!r}")
    return t


def _ip_ok(s: str, public_only: bool) -> bool:
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        return False
    return ip.is_global or not public_only


class PII(Transform):
    """Replace e-mail addresses, IP addresses and phone numbers in ``doc.text``.

    Args:
        emails, ipv4, ipv6, phones: which kinds to redact (all on).
        only_public_ips: leave private, loopback, link-local and documentation addresses (as datatrove).
        email_replacement, ip_replacement, ipv6_replacement, phone_replacement: stand-in values, used in
            turn within a document (datatrove's convention).

    Signals (``pii.*``): ``emails``, ``ipv4``, ``ipv6``, ``phones`` (replacements made).
    """

    name = "pii"

    def __init__(
        self,
        emails: bool = True,
        ipv4: bool = True,
        ipv6: bool = True,
        phones: bool = True,
        only_public_ips: bool = True,
        email_replacement: Sequence[str] | str = EMAIL_REPLACEMENT,
        ip_replacement: Sequence[str] | str = IPV4_REPLACEMENT,
        ipv6_replacement: Sequence[str] | str = IPV6_REPLACEMENT,
        phone_replacement: Sequence[str] | str = PHONE_REPLACEMENT,
        languages: Iterable[str] | str | None = None,
    ):
        self.emails, self.ipv4, self.ipv6, self.phones = bool(emails), bool(ipv4), bool(ipv6), bool(phones)
        self.only_public_ips = bool(only_public_ips)
        self.email_replacement = _tuple(email_replacement, "email_replacement")
        self.ip_replacement = _tuple(ip_replacement, "ip_replacement")
        self.ipv6_replacement = _tuple(ipv6_replacement, "ipv6_replacement")
        self.phone_replacement = _tuple(phone_replacement, "phone_replacement")
        self.languages = language_set(languages)

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        """``(new text, replacements per kind)``."""
        counts = {"emails": 0, "ipv4": 0, "ipv6": 0, "phones": 0}
        if self.emails and "@" in text:
            text = self._sub(EMAIL, text, self.email_replacement, counts, "emails", None)
        if self.ipv4 and "." in text:
            text = self._sub(IPV4, text, self.ip_replacement, counts, "ipv4", self._ipv4_ok)
        if self.ipv6 and ("::" in text or _IPV6_HINT.search(text)):
            text = self._sub(IPV6, text, self.ipv6_replacement, counts, "ipv6", self._ipv6_ok)
        if self.phones:
            text = self._phone_sub(text, counts)
        return text, counts

    def _ipv4_ok(self, m: re.Match, text: str) -> bool:
        if _VERSION_BEFORE.search(text, max(0, m.start() - 12), m.start()):
            return False
        return _ip_ok(m.group(0), self.only_public_ips)

    def _ipv6_ok(self, m: re.Match, text: str) -> bool:
        s = m.group(0)
        # C++ / Rust paths (a::b, dead::beef) are valid addresses: ask for 3 colons or a full 4-digit group
        # with a digit, as written addresses have
        if s.count(":") < 3 and not _FULL_GROUP.search(s):
            return False
        return _ip_ok(s, self.only_public_ips)

    @staticmethod
    def _sub(rx: re.Pattern, text: str, repl: tuple[str, ...], counts: dict, key: str, ok) -> str:
        def one(m: re.Match) -> str:
            if ok is not None and not ok(m, text):
                return m.group(0)
            r = repl[counts[key] % len(repl)]
            counts[key] += 1
            return r

        return rx.sub(one, text)

    def _phone_sub(self, text: str, counts: dict) -> str:
        repl = self.phone_replacement

        def one(m: re.Match) -> str:
            whole = m.group(0)
            nat = m.groupdict().get("nat")
            number = nat or whole
            digits = sum(c.isdigit() for c in number)
            if not MIN_PHONE_DIGITS <= digits <= MAX_PHONE_DIGITS:
                return whole
            if nat and not (number.startswith(("0", "(")) or digits >= 9):
                return whole  # national numbers: a trunk prefix or a full-length number, not "tel. 12 34"
            r = repl[counts["phones"] % len(repl)]
            counts["phones"] += 1
            return whole[: m.start("nat") - m.start()] + r if nat else r

        if "+" in text or "(" in text or "-" in text or "." in text:
            text = PHONE.sub(one, text)
        # after PHONE (a stand-in starts with "+", never re-matched); the keyword regex is tried only where
        # str.find sees a keyword (scanning every position with it costs more than all other rules together)
        low = text.lower()
        if len(low) != len(text):  # lower() changed offsets (e.g. "İ"): plain scan
            return PHONE_AFTER_KEYWORD.sub(one, text)
        starts = set()
        for k in _KEYWORD_HINTS:
            i = low.find(k)
            while i >= 0:
                starts.add(i)
                i = low.find(k, i + 1)
        out, last = [], 0
        for i in sorted(starts):
            if i < last:
                continue
            m = PHONE_AFTER_KEYWORD.match(text, i)
            if m:
                out += [text[last:m.start()], one(m)]
                last = m.end()
        return "".join(out) + text[last:] if out else text

    def transform(self, doc: Document) -> str | None:
        text, counts = self.redact(doc.text)
        if text != doc.text:
            doc.text = text
        s = self.signals(doc)
        for k, v in counts.items():
            s[k] = v
        return None
