"""robots.txt verdicts (optout/robots.py) against a plain reading of RFC 9309, on the 50 real robots.txt files of
tests/data/optout/robots (byte for byte: CRLF, no final newline, malformed lines), without Spark.

`rfc9309_allowed` below is the RFC read plainly, written for these tests only: it is the yardstick protego (and the
group choice robots.py makes around it) is held to on every file, every default agent and every path the file
names."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
from protego import Protego

from metaclip_spark.config import load_config
from metaclip_spark.errors import ConfigError
from metaclip_spark.optout.domains import registered_domain
from metaclip_spark.optout.robots import PARSE_LIMIT, Judge, Robots, decode, group_tokens, url_host
from metaclip_spark.optout.signals import Policy, signal_agent, signal_kind

ROBOTS = Path(__file__).resolve().parent / "data" / "optout" / "robots"
FILES = sorted(ROBOTS.glob("*.txt"))
AGENTS = load_config().optout.agents


# --- RFC 9309, read plainly --------------------------------------------------------------------------------------
def _groups(text: str) -> list[tuple[set[str], list[tuple[str, str]]]]:
    """2.1 and 2.2: groups of user-agent lines (consecutive ones share a group) and their allow/disallow rules;
    comments (#) dropped, field names without case, rules outside a group ignored, empty paths ignored."""
    groups, current, in_rules = [], None, False
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name, value = name.strip().lower(), value.strip()
        if name == "user-agent":
            if current is None or in_rules:
                current, in_rules = (set(), []), False
                groups.append(current)
            current[0].add(value.lower())
        elif name in ("allow", "disallow") and current is not None:
            in_rules = True
            if value:
                current[1].append((name, value))
    return groups


@functools.lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern:
    """2.2.3: `*` any run of characters, a final `$` the end of the path; otherwise a prefix."""
    anchored = pattern.endswith("$")
    regex = ".*".join(re.escape(part) for part in (pattern[:-1] if anchored else pattern).split("*"))
    return re.compile(regex + ("$" if anchored else ""))


def _matches(pattern: str, path: str) -> bool:
    return _regex(pattern).match(path) is not None


def rfc9309_allowed(groups: list, path: str, agent: str, apply_star_group: bool = True) -> bool:
    """`groups`: _groups of the file."""
    token = agent.lower()
    # 2.2.1: the groups naming the product token (case-insensitive), combined; else the `*` group(s)
    rules = [r for names, rs in groups if token in names for r in rs]
    if not any(token in names for names, _ in groups):
        rules = [r for names, rs in groups if "*" in names for r in rs] if apply_star_group else []
    # 2.2.2: the most specific (longest) match wins; Allow on a tie; no match: allowed
    best = None
    for field, pattern in rules:
        if _matches(pattern, path):
            key = (len(pattern), field == "allow")
            best = max(best, key) if best else key
    return best is None or best[1]


def _paths(text: str) -> list[str]:
    """The paths a file's rules name (wildcards filled in), a path under each, and the site's root."""
    found = {"/", "/some/page.html"}
    for _, rules in _groups(text):
        for _, pattern in rules:
            path = pattern.rstrip("$").replace("*", "x")
            if path.startswith("/") and re.fullmatch(r"[A-Za-z0-9/._\-~?=&x]*", path):
                found.update((path, path + "x/y"))
    return sorted(found)


# protego deviates from the plain reading in one documented way robots.py does not correct: an allowed
# /index.html also allows its directory (Google's reading). Paths ending in "/" under such a rule are left out.
def _index_html_rule(text: str, path: str) -> bool:
    return path.endswith("/") and "index.html" in text


@pytest.mark.parametrize("path_", FILES, ids=[f.name for f in FILES])
def test_every_verdict_on_the_real_files_is_rfc_9309s(path_):
    raw = path_.read_bytes()
    robots = Robots(200, raw)
    text = decode(raw)
    groups = _groups(text)
    named = {name for names, _ in groups for name in names}
    # the default agents the file names, and one it does not (every other one is judged as that one)
    agents = [a for a in AGENTS if a.lower() in named] + [next(a for a in AGENTS if a.lower() not in named)]
    for apply_star in (True, False):
        for agent in agents:
            for path in _paths(text):
                if _index_html_rule(text, path):
                    continue
                expected = rfc9309_allowed(groups, path, agent, apply_star)
                assert robots.allowed(f"https://site.example{path}", agent, apply_star) == expected, \
                    (path_.name, agent, path, apply_star)


def test_the_real_files_say_what_their_provenance_says():
    """A few files read by hand (tests/data/optout/README.md), as the default agents see them."""
    def refused(name: str, path: str = "/a/page", star: bool = True) -> str | None:
        return Robots(200, (ROBOTS / name).read_bytes()).refusing_agent(f"https://s.example{path}", AGENTS, star)

    assert refused("002.txt") == "ccbot"  # CRLF lines; CCBot's own group disallows /
    assert refused("003.txt") == "anthropic-ai"  # `Anthropic-AI`: a product token without case
    assert refused("014.txt") == "applebot-extended"  # no `*` group; `GPTbot` etc.
    assert refused("013.txt", star=False) is None  # an allow-list: CCBot named with an empty Disallow...
    assert refused("013.txt") == "ai2bot"  # ...and every other crawler blocked by the `*` group
    assert refused("024.txt") == "ai2bot" and refused("024.txt", star=False) is None  # `*` Disallow / only
    assert refused("027.txt") is None and refused("027.txt", "/blog/post") == "ai2bot"  # the blog only
    assert refused("001.txt") is None  # no AI rules, `*` paths only
    assert refused("019.txt") is None  # no group at all


ODD_LINES = ("User-agent: GPTBot*\nDisallow: /a\n"  # a wildcard: also the token without it
             "useragent: CCBot\nuser agent: Bytespider\nUser-agent ClaudeBot\nUSER-AGENT:Omgili\n"  # typos, no blank
             "User-agent:\nUser-agent: # nobody\nUser-agent Applebot: x\nUser-agentish: PetalBot\n"  # no group
             "Disallow: /b\n")


@pytest.mark.parametrize("text", [decode(f.read_bytes()) for f in FILES] + [ODD_LINES],
                         ids=[f.name for f in FILES] + ["odd-lines"])
def test_the_groups_read_are_the_groups_protego_holds_rules_for(text):
    """robots.py asks protego for a group's rules only when group_tokens names it: the two must agree on which
    groups a file has (protego's own record of them is private: read here, by the test, to hold them together)."""
    assert group_tokens(text) == set(Protego.parse(text)._user_agents)


def test_which_groups_a_file_names():
    assert group_tokens(ODD_LINES) == {"gptbot*", "gptbot", "ccbot", "bytespider", "claudebot", "omgili"}
    assert group_tokens((ROBOTS / "024.txt").read_text()) == {"*"} and group_tokens((ROBOTS / "019.txt").read_text()) == set()


def test_where_protego_deviates_from_rfc_9309_robots_decides():
    # protego lets `User-agent: Google` rule Google-Extended (a part of its name); RFC 9309 matches the token
    body = "User-agent: Google\nDisallow: /\n\nUser-agent: *\nAllow: /\n"
    assert not Protego.parse(body).can_fetch("https://s.example/a", "Google-Extended")
    assert Robots(200, body).allowed("https://s.example/a", "Google-Extended")
    assert not Robots(200, body).allowed("https://s.example/a", "Google")
    # with apply_star_group = false an agent no group names is not ruled by `*` (protego always applies it)
    body = "User-agent: *\nDisallow: /\n"
    assert not Protego.parse(body).can_fetch("https://s.example/a", "GPTBot")
    assert Robots(200, body).allowed("https://s.example/a", "GPTBot", apply_star_group=False)
    assert not Robots(200, body).allowed("https://s.example/a", "GPTBot", apply_star_group=True)


def test_longest_match_allow_on_a_tie_wildcards_and_end_anchor():
    robots = Robots(200, "User-agent: gptbot\nDisallow: /p\nAllow: /p\nDisallow: /a/\nAllow: /a/open\n"
                         "Disallow: /*.jpg$\nDisallow: /x*/y\n")
    assert robots.allowed("https://s.example/p", "GPTBot")  # a tie: Allow
    assert not robots.allowed("https://s.example/a/b", "GPTBot")
    assert robots.allowed("https://s.example/a/open/1", "GPTBot")  # the longer Allow wins
    assert not robots.allowed("https://s.example/i/a.jpg", "GPTBot")
    assert robots.allowed("https://s.example/i/a.jpg?s=1", "GPTBot")  # `$`: the end of the path
    assert not robots.allowed("https://s.example/x123/y", "GPTBot")
    # groups naming an agent twice are combined
    robots = Robots(200, "User-agent: CCBot\nDisallow: /a\n\nUser-agent: ccbot\nDisallow: /b\n")
    assert not robots.allowed("https://s.example/a", "CCBot") and not robots.allowed("https://s.example/b", "CCBot")


def test_status_byte_order_mark_and_size_limit():
    assert Robots(404, b"").allowed("https://s.example/", "GPTBot")  # unavailable: allowed
    assert Robots(301, b"").allowed("https://s.example/", "GPTBot")  # a redirect not followed: unavailable
    assert not Robots(503, b"").allowed("https://s.example/", "GPTBot")  # unreachable: complete disallow
    assert not Robots(None, b"").allowed("https://s.example/", "GPTBot")
    bom = b"\xef\xbb\xbfUser-agent: GPTBot\r\nDisallow: /\r\n"  # the first line is still a user-agent line
    assert not Robots(200, bom).allowed("https://s.example/", "GPTBot")
    late = b"User-agent: *\n" + b"#" * PARSE_LIMIT + b"\nDisallow: /\n"  # past 500 KiB: not read
    assert Robots(200, late).allowed("https://s.example/", "GPTBot")


def test_the_judge_checks_the_page_then_the_image_host_and_blocked_domains():
    judge = Judge(["GPTBot", "CCBot"])
    captures = {"cdn.example": ("2025-03-02T00:00:00Z", 200, b"User-agent: CCBot\nDisallow: /img/\n"),
                "www.site.example": ("2025-03-01T00:00:00Z", 200, b"User-agent: GPTBot\nDisallow: /private/\n")}
    assert judge.verdict("https://www.site.example/p", "https://cdn.example/img/1.jpg", captures) == (
        "robots-txt@ccbot:image", "cdn.example", "2025-03-02T00:00:00Z")
    assert judge.verdict("https://WWW.Site.example:8080/private/p", "https://cdn.example/img/1.jpg", captures) == (
        "robots-txt@gptbot:page", "www.site.example", "2025-03-01T00:00:00Z")
    assert judge.verdict("https://www.site.example/p", "https://other.example/img/1.jpg", captures) is None
    blocked = Judge(["GPTBot"], blocked={"bbc.co.uk"})
    assert blocked.verdict("https://news.bbc.co.uk/a", "https://x.example/i.jpg", {}) == (
        "blocked-domain:page", None, None)
    assert blocked.verdict("https://x.example/a", "https://ichef.bbc.co.uk/i.jpg", {}) == (
        "blocked-domain:image", None, None)
    assert blocked.verdict("https://bbc.co.uk.example/a", "https://x.example/i.jpg", {}) is None
    assert url_host("https://user@Host.Example.:81/x") == "host.example" and url_host("not a url") is None
    assert signal_kind("robots-txt@ccbot:image") == "robots-txt" and signal_agent("robots-txt@ccbot:image") == "ccbot"
    assert signal_kind("blocked-domain:page") == "blocked-domain" and signal_agent("blocked-domain:page") == "*"


def test_registered_domains_follow_the_public_suffix_list_bundled():
    assert registered_domain("www.bbc.co.uk") == "bbc.co.uk"
    assert registered_domain("images.example.com") == "example.com"
    assert registered_domain("someone.github.io") == "someone.github.io"  # a private suffix of the list
    assert registered_domain("192.168.0.1") == "192.168.0.1" and registered_domain(None) is None
    assert registered_domain("co.uk") == "co.uk"  # a bare public suffix: its own domain


def test_the_optout_options_reach_the_policy(tmp_path):
    domains = tmp_path / "blocked.txt"
    domains.write_text("# publishers that asked\nBBC.co.uk\n\nexample.org.  # a final dot\n")
    policy = Policy.from_settings(load_config(overrides={"optout": {
        "blocked_domains": str(domains), "apply_star_group": False, "agents": ["GPTBot", "CCBot"]}}).optout)
    assert policy.blocked == {"bbc.co.uk", "example.org"} and policy.agents == ("ccbot", "gptbot")
    assert not policy.apply_star_group
    default = Policy.from_settings(load_config().optout)
    assert default.apply_star_group and not default.blocked and "ccbot" in default.agents
    assert len({policy.digest(), default.digest(),
                Policy.from_settings(load_config(overrides={"optout": {"apply_star_group": False}}).optout).digest()
                }) == 3  # each option changes the policy a crawl was judged under
    with pytest.raises(ConfigError, match="optout.blocked_domains"):
        load_config(overrides={"optout": {"blocked_domains": str(tmp_path / "absent.txt")}})


# Agents of the default chosen by reading their robots.json entry, beyond the mechanical rule (docs/optout.md names
# each): they collect for LLMs or AI products, sell the data, or are an operator's AI-training opt-out token.
HAND_CHOSEN = {"ccbot", "applebot-extended", "cohere-ai", "cotoyogi", "diffbot", "img2dataset", "omgili", "omgilibot",
               "yandexadditional", "yandexadditionalbot", "youbot"}


def test_the_default_agents_follow_the_ai_robots_txt_snapshot_by_the_documented_rule():
    """Every default agent is in the ai.robots.txt snapshot the docs name (tests/data/optout/ai-robots, commit
    0037a9e), spelled as there; and the default is the documented rule applied to it: every agent whose function is
    an AI data scraper or mentions training, whose name can be a robots.txt product token (no space), compared
    without case, plus the hand-chosen few the docs name."""
    snapshot = json.loads((ROBOTS.parent / "ai-robots" / "robots.json").read_text())
    default = load_config().optout.agents
    assert [a for a in default if a not in snapshot] == []
    assert len({a.lower() for a in default}) == len(default)  # no case variant twice
    ruled = {name.lower() for name, entry in snapshot.items()
             if " " not in name and (entry["function"].lower().rstrip("s") == "ai data scraper"
                                     or "train" in entry["function"].lower())}
    assert {a.lower() for a in default} == ruled | HAND_CHOSEN
    assert not ruled & HAND_CHOSEN
    docs = (Path(__file__).resolve().parents[1] / "docs" / "optout.md").read_text()
    section = docs.split("## The agents, where they come from, when to update them", 1)[1].split("\n## ", 1)[0]
    named = {a.lower() for a in re.findall(r"`([^`]+)`", section)}
    assert HAND_CHOSEN <= named
