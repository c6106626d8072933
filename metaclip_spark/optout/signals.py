"""AI-training opt-outs a page declares: what was seen (signals), and the verdict of a configuration on them.

Pure functions (no Spark, no I/O). Extraction records, with each pair, the signals of its page as short strings
(the `optout_signals` column, null when the page showed none), whatever the configuration: a new `[optout]`
configuration is applied to the stored signals, without reading the files again. Signals, sorted, each at most once:

- `robots:<directive>`: a `<meta name="robots">` directive; `robots@<name>:<directive>`: the same under another
  meta name (`<meta name="CCBot" content="noai">`), the name lower-cased;
- `x-robots-tag:<directive>`, `x-robots-tag@<agent>:<directive>`: an `X-Robots-Tag` header directive, for all
  crawlers or, after an `agent:` prefix (`X-Robots-Tag: GPTBot: noai`), for that one;
- `tdm-reservation:header`, `tdm-reservation:meta`: the W3C TDM Reservation Protocol's `tdm-reservation: 1`;
- `content-usage:<category>=n`: an IETF aipref `Content-Usage` header refusing a usage category (`train-ai=n`).

Only directives of DIRECTIVES are recorded (the `[optout] directives` a configuration may choose from), and only
refusals of Content-Usage categories: a page's `index, follow` is not kept. Every meta of the document counts,
as Common Crawl's WAT files list them (HTML-Metadata's Head/Metas), so the WARC and WAT paths see the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

SIGNALS_COLUMN = "optout_signals"
# Robots directives a configuration may refuse on: the ones recorded at extraction.
DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex", "nofollow", "none", "noarchive", "nosnippet",
              "notranslate")
_DIRECTIVE_SET = frozenset(DIRECTIVES)
# The response headers that may carry a signal (names lower-cased).
HEADER_NAMES = ("x-robots-tag", "tdm-reservation", "content-usage")
# Directives with a value after a colon (Google's `max-snippet: 20`): their colon is not an agent prefix.
_VALUED = frozenset(("unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"))
_WORDS = re.compile(r"[^,\s]+")
MAX_SIGNALS = 32  # per page: a page listing more is refused on what it shows first (kept sorted)
# Kinds of signal, as counted in the funnel and report.
# robots-txt and blocked-domain are verdicts of the site (optout/robots.py), not signals of the page.
KINDS = ("robots-meta", "x-robots-tag", "tdm-reservation", "content-usage", "robots-txt", "blocked-domain")
_KIND_OF = {"robots": "robots-meta", "x-robots-tag": "x-robots-tag", "tdm-reservation": "tdm-reservation",
            "content-usage": "content-usage", "robots-txt": "robots-txt", "blocked-domain": "blocked-domain"}


def _directives(text: str) -> list[str]:
    return [word for word in _WORDS.findall(text.lower()) if word in _DIRECTIVE_SET]


def meta_signals(metas: Iterable[tuple]) -> list[str]:
    """Signals of a page's metas, given as (name, content) with None for a missing attribute."""
    found = []
    for name, content in metas:
        if not isinstance(name, str) or not isinstance(content, str):
            continue
        lowered = content.lower()
        if "no" not in lowered and "1" not in content:
            continue  # most metas (descriptions, viewports...): every directive recorded holds "no"
        name = name.strip().lower()
        if not name:
            continue
        if name == "tdm-reservation":
            if content.strip() == "1":
                found.append("tdm-reservation:meta")
            continue
        prefix = "robots:" if name == "robots" else f"robots@{name}:"
        found.extend(prefix + directive for directive in _directives(lowered))
    return found


def x_robots_tag_signals(value: str) -> list[str]:
    """Signals of one X-Robots-Tag header value: a comma-separated list of directives, where `agent: directive`
    starts the part that applies to that agent only (Google's reading)."""
    found, agent = [], None
    for part in value.split(","):
        name, colon, rest = part.partition(":")
        if colon and name.strip().lower() not in _VALUED:
            agent, part = name.strip().lower() or None, rest
        prefix = f"x-robots-tag@{agent}:" if agent else "x-robots-tag:"
        found.extend(prefix + directive for directive in _directives(part))
    return found


def content_usage_signals(value: str) -> list[str]:
    """Refusals in a Content-Usage header (a structured-field dictionary: `train-ai=n, search=y;...`)."""
    found = []
    for member in value.split(","):
        key, equals, item = member.split(";", 1)[0].partition("=")
        key = key.strip().lower()
        if equals and key and item.strip().strip('"').lower() == "n":
            found.append(f"content-usage:{key}=n")
    return found


def header_signals(x_robots_tags: Iterable[str] = (), tdm_reservations: Iterable[str] = (),
                   content_usages: Iterable[str] = ()) -> list[str]:
    """Signals of a response's headers (each argument: the values of that header, repeated headers apart)."""
    found = []
    for value in x_robots_tags:
        if isinstance(value, str):
            found.extend(x_robots_tag_signals(value))
    if any(isinstance(v, str) and v.strip() == "1" for v in tdm_reservations):
        found.append("tdm-reservation:header")
    for value in content_usages:
        if isinstance(value, str):
            found.extend(content_usage_signals(value))
    return found


def combined(*parts: list[str]) -> list[str] | None:
    """The signals of a page: sorted, each once, at most MAX_SIGNALS; None when there are none."""
    if not any(parts):
        return None
    signals = sorted(set().union(*parts))
    return signals[:MAX_SIGNALS] or None


def headers_by_name(headers: dict) -> tuple[list[str], list[str], list[str]]:
    """(X-Robots-Tag, tdm-reservation, Content-Usage) values of a WAT record's `Headers` object (names in any case;
    a value may be a list when a writer kept repeated headers apart)."""
    found: tuple[list, list, list] = ([], [], [])
    slots = {name: slot for slot, name in enumerate(HEADER_NAMES)}
    for name, value in headers.items():
        slot = slots.get(name.lower()) if isinstance(name, str) else None
        if slot is not None:
            found[slot].extend(value if isinstance(value, list) else [value])
    return found


# What a raw JSON text (a WAT record's Headers or Head/Metas, not yet decoded) must hold for its decoded value to give a
# signal; a text holding none of it is not decoded (WatPage.optout_headers, optout_metas), and that is exact because
# each condition is necessary:
# - a header gives a signal only under a name that, lower-cased (str.lower), is one of HEADER_NAMES (headers_by_name);
#   a meta only when its lower-cased content holds a word of DIRECTIVES (each starts with "no"), or its name, stripped
#   and lower-cased, is "tdm-reservation" (meta_signals). All of these are ASCII.
# - str.lower() gives an ASCII character only for an ASCII character, U+212A KELVIN SIGN ("k", in none of these
#   words: tests/test_optout_fast.py checks it) and U+0130 ("i" followed by U+0307, which then stands in the word or
#   name, making it none of these).
# - JSON writes a character of a string either as itself or as an escape; only `\u` escapes write a letter, digit or
#   hyphen (the others write \" \\ / and control characters), and an ASCII character's starts `\u00`.
# So a text without `\u00` holds the word or name as ASCII bytes, in some case: found in bytes.lower() of the text.
_ASCII_ESCAPE = b"\\u00"
_X_ROBOTS_TAG, _TDM_RESERVATION, _CONTENT_USAGE = (name.encode() for name in HEADER_NAMES)
_DIRECTIVES_BYTES = tuple(word.encode() for word in DIRECTIVES)


def raw_headers_may_signal(raw: bytes) -> bool:
    """False only when the raw JSON of a Headers object cannot give a signal (see above)."""
    # (bytes.find, not `in`: CPython 3.11's `in` first reads its operand as an integer, raising and clearing a
    # TypeError with a formatted message each time: 177 ns against 132 for a name in a record's headers; the three
    # names spelled out, not an any() over a generator, which costs more than their searches)
    if raw.find(b"\\") >= 0 and raw.find(_ASCII_ESCAPE) >= 0:  # (a search for one byte, memchr, is nearly free)
        return True
    lowered = raw.lower()
    return lowered.find(_X_ROBOTS_TAG) >= 0 or lowered.find(_TDM_RESERVATION) >= 0 or lowered.find(_CONTENT_USAGE) >= 0


def raw_metas_may_signal(raw: bytes) -> bool:
    """False only when the raw JSON of a Head/Metas list cannot give a signal (see above)."""
    if raw.find(b"\\") >= 0 and raw.find(_ASCII_ESCAPE) >= 0:
        return True
    lowered = raw.lower()
    # Every directive starts with "no": a text holds one where one of its "no"s starts it (most pages' metas hold no
    # "no" at all, a few one or two), which costs less than looking for each of the words.
    at = lowered.find(b"no")
    while at >= 0:
        if lowered.startswith(_DIRECTIVES_BYTES, at):
            return True
        at = lowered.find(b"no", at + 1)
    return lowered.find(_TDM_RESERVATION) >= 0


def signal_kind(signal: str) -> str:
    """robots-meta, x-robots-tag, tdm-reservation or content-usage."""
    return _KIND_OF.get(signal.split(":", 1)[0].split("@", 1)[0], signal)


def signal_agent(signal: str) -> str:
    """The agent a signal names (lower-cased), or "*" for one addressed to every crawler."""
    head = signal.split(":", 1)[0]
    return head.split("@", 1)[1] if "@" in head else "*"


def read_blocked_domains(path: str) -> frozenset:
    """The registered domains of a `blocked_domains` file: one a line, lower-cased, `#` comments and blank lines
    skipped."""
    if not path:
        return frozenset()
    with open(path, encoding="utf-8-sig") as f:
        lines = (line.split("#", 1)[0].strip().lower().rstrip(".") for line in f)
        return frozenset(line for line in lines if line)


@dataclass(frozen=True)
class Policy:
    """What the `[optout]` configuration refuses on: a signal refuses when it is in `refusing`; robots.txt captures
    (when the root has some) are judged for `agents`, obeying `*` groups when `apply_star_group`; pages and
    images on a registered domain of `blocked` are refused."""

    enabled: bool
    refusing: frozenset
    agents: tuple = ()
    apply_star_group: bool = True
    blocked: frozenset = frozenset()

    @classmethod
    def from_settings(cls, optout) -> "Policy":
        refusing: set[str] = set()
        if optout.honour_page_signals:
            agents = sorted({a.lower() for a in optout.agents})
            for directive in (d.lower() for d in optout.directives):
                for source in ("robots", "x-robots-tag"):
                    refusing.add(f"{source}:{directive}")
                    refusing.update(f"{source}@{agent}:{directive}" for agent in agents)
            if optout.tdm_reservation:
                refusing.update(("tdm-reservation:header", "tdm-reservation:meta"))
            refusing.update(f"content-usage:{category.lower()}=n" for category in optout.content_usage)
        return cls(bool(refusing), frozenset(refusing), tuple(sorted({a.strip().lower() for a in optout.agents})),
                   optout.apply_star_group, read_blocked_domains(optout.blocked_domains))

    def verdict(self, signals: list[str] | None) -> str | None:
        """The signal a page is refused on (the first, in sorted order), or None when it is not."""
        for signal in signals or ():
            if signal in self.refusing:
                return signal
        return None

    def digest(self) -> str:
        """Names this policy in a crawl's state: a crawl built under another one is rebuilt."""
        import hashlib

        named = sorted(self.refusing) + [f"robots-txt@{a}" for a in self.agents] \
            + [f"apply_star_group={self.apply_star_group}"] + [f"blocked-domain:{d}" for d in sorted(self.blocked)]
        return hashlib.sha256("\n".join(named).encode()).hexdigest()[:16]
