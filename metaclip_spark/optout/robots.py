"""robots.txt verdicts by RFC 9309 (pure functions, no Spark): does a host's captured robots.txt disallow a URL for
one of the configured AI-training agents?

The rules are parsed by protego (maintained, follows RFC 9309's matching: longest match wins, Allow on a tie, `*`
and `$` in paths, `/robots.txt` always allowed). Where protego deviates from a plain reading of RFC 9309 this module
decides instead (tests/test_optout_robots.py checks both against real robots.txt files):

- the group of an agent: protego applies a group whose name is a part of the agent's name at a token boundary (a
  `User-agent: Google` group to Google-Extended); RFC 9309 2.2.1 matches the product token itself, without case.
  Here an agent obeys the group(s) naming exactly its token (lower-cased), else the `*` group when
  `apply_star_group` (RFC 9309: "If no matching group exists, crawlers MUST obey the group with a user-agent
  line with the `*` value"), else no group: allowed. Which tokens name a group is read here from the file's
  user-agent lines (`group_tokens`, as protego reads them: protego offers no public way to ask), and protego is
  asked for the rules of a group only when one names the agent's token exactly, so it picks that group;
- the status of the capture (RFC 9309 2.3.1): 2xx: the rules; 4xx ("unavailable"): everything allowed; 5xx
  ("unreachable"): everything disallowed; a 3xx redirect, which Common Crawl stores as such without the file
  it leads to, counts as unavailable (RFC 9309 2.3.1.2: a crawler "MAY assume" so when no file is reached);
- the first 500 KiB of the file are parsed (RFC 9309 2.5's minimum), a UTF-8 byte order mark dropped, invalid
  UTF-8 replaced.
"""

from __future__ import annotations

from collections import OrderedDict
from urllib.parse import urlsplit

from protego import Protego

from metaclip_spark.optout.domains import registered_domain

PARSE_LIMIT = 500 * 1024  # bytes of a robots.txt parsed (RFC 9309 2.5: at least 500 kibibytes)
SIGNAL = "robots-txt"  # optout_signal of a pair refused by robots.txt: robots-txt@<agent>:page or :image
_CACHE_SIZE = 256  # parsed files kept per worker: the pairs of a host are judged together after the join


def decode(body: bytes | None) -> str:
    """The text of a robots.txt body: its first PARSE_LIMIT bytes, without a byte order mark."""
    return (body or b"")[:PARSE_LIMIT].decode("utf-8", "replace").removeprefix("\ufeff")


def url_host(url: str | None) -> str | None:
    """The host of a URL, lower-cased, without a port, user info or final dot (None when it has none): the key of
    the host table (optout/tables.py's page_host is the same in SQL)."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".") or None if host else None


# The spellings of the user-agent field protego reads (RFC 9309 2.1 has `user-agent`; the others are common typos,
# which Google's parser reads too): a group named on such a line is one protego holds rules for.
_USER_AGENT_FIELDS = frozenset({"user-agent", "useragent", "user agent"})


def _user_agent_value(line: str) -> str | None:
    """The value of a user-agent line (comment and outer blanks removed), as protego splits a line: `field: value`,
    or, when the text before a colon is no field and the colon is not followed by a blank, `field value`."""
    field, colon, value = line.partition(":")
    if colon:
        if field.strip().lower() in _USER_AGENT_FIELDS:
            return value.strip()
        if not value or value[0].isspace():
            return None  # an unknown `field: value` line
    words = line.split()
    for n in (1, 2):
        if " ".join(words[:n]).lower() in _USER_AGENT_FIELDS:
            return " ".join(words[n:])
    return None


def group_tokens(text: str) -> frozenset[str]:
    """The user-agent values (lower-cased; `*` for the star group) that name a group of a robots.txt: the groups
    protego holds rules for, read from the file's user-agent lines as protego reads them (protego offers no public
    way to ask). A value with a `*` also names the value without it (`GPTBot*`: GPTBot), as in protego; an empty
    value names nothing. tests/test_optout_robots.py checks the two readings agree on every real file."""
    tokens = set()
    for line in text.splitlines():
        value = _user_agent_value(line.split("#", 1)[0].strip())
        if value:
            token = value.lower()
            tokens.update(t for t in (token, token.replace("*", "") if token != "*" else None) if t)
    return frozenset(tokens)


class Robots:
    """One capture of a host's robots.txt: its HTTP status and, when 2xx, its parsed rules."""

    def __init__(self, status: int | None, body: bytes | str | None):
        self.status = status or 0
        self.parser = None
        self.groups: frozenset = frozenset()
        self._plans: dict = {}
        if 200 <= self.status < 300:
            text = body if isinstance(body, str) else decode(body)
            self.parser = Protego.parse(text)
            self.groups = group_tokens(text)

    def allowed(self, url: str, agent: str, apply_star_group: bool = True) -> bool:
        """Whether `agent` (a product token) may fetch `url` under this capture."""
        if 300 <= self.status < 500:
            return True  # a redirect or unavailable: no restriction
        if self.parser is None:
            return False  # unreachable (5xx, or no status): complete disallow
        token = agent.strip().lower()
        if token in self.groups:
            # the exact group has the highest of protego's scores (the token's length) among the groups it applies
            return self.parser.can_fetch(url, token)
        if apply_star_group and "*" in self.groups:
            return self.parser.can_fetch(url, "*")  # no other group is a part of "*": the star group alone
        return True

    def refusing_agent(self, url: str, agents: tuple[str, ...], apply_star_group: bool = True) -> str | None:
        """The first of `agents` (sorted, lower-cased) this capture disallows `url` for, or None. Agents that no
        group names share one verdict (the `*` group's, or allowed): each group present is matched once."""
        if not 200 <= self.status < 300:
            return None if self.allowed(url, "", apply_star_group) else min(a.strip().lower() for a in agents)
        refusing = None
        for token, first in self._plan(agents, apply_star_group):
            if (refusing is None or first < refusing) and not self.parser.can_fetch(url, token):
                refusing = first
        return refusing

    def _plan(self, agents: tuple[str, ...], apply_star_group: bool) -> list[tuple[str, str]]:
        """(group token to match, the first agent it rules) for the groups that rule one of `agents`."""
        key = (agents, apply_star_group)
        if self._plans.get(key) is None:
            named: dict[str, str] = {}
            for agent in sorted(a.strip().lower() for a in agents):
                token = agent if agent in self.groups else "*" if apply_star_group and "*" in self.groups else None
                if token is not None and token not in named:
                    named[token] = agent
            self._plans[key] = sorted(named.items(), key=lambda item: item[1])
        return self._plans[key]


class Judge:
    """Verdicts of a configuration on pairs: a blocked domain first, then robots.txt; each capture parsed once while
    it is among the last _CACHE_SIZE used (the join hands a worker the pairs of one page host together)."""

    def __init__(self, agents, apply_star_group: bool = True, blocked=frozenset()):
        self.agents = tuple(sorted({a.strip().lower() for a in agents}))
        self.apply_star_group = apply_star_group
        self.blocked = frozenset(blocked)
        self._parsed: OrderedDict = OrderedDict()

    def robots(self, host: str, fetched: str | None, status: int | None, body: bytes | None) -> Robots:
        key = (host, fetched, status)  # a host's capture in the host table: one per host
        found = self._parsed.get(key)
        if found is None:
            found = self._parsed[key] = Robots(status, body)
            if len(self._parsed) > _CACHE_SIZE:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(key)
        return found

    def verdict(self, page_url: str | None, image_url: str | None, captures: dict) -> tuple | None:
        """(signal, capture host, capture date) a pair is refused on, or None. Signals: `blocked-domain:page` (or
        `:image`, capture fields None), then `robots-txt@<agent>:page`, then `:image`. `captures`: host ->
        (fetched, status, body) for the hosts of the page and image that have one."""
        roles = (("page", page_url, url_host(page_url)), ("image", image_url, url_host(image_url)))
        if self.blocked:
            for role, _, host in roles:
                if host is not None and registered_domain(host) in self.blocked:
                    return f"blocked-domain:{role}", None, None
        for role, url, host in roles:
            if host is None or host not in captures:
                continue
            fetched, status, body = captures[host]
            agent = self.robots(host, fetched, status, body).refusing_agent(url, self.agents, self.apply_star_group)
            if agent is not None:
                return f"{SIGNAL}@{agent}:{role}", host, fetched
        return None
