"""Registered domains by the Public Suffix List (pure functions, no Spark): the unit `[optout] blocked_domains` names
(optout/robots.py) and the public summary ranks its top domains by (report/public_summary.py).

The list is the snapshot bundled with the `publicsuffixlist` package, read offline and never fetched: its version
names the snapshot (the public summary records it). Private suffixes count (someone.github.io is a registered
domain of its own), and a host that is an IP address is its own domain.
"""

from __future__ import annotations

import re

_IP = re.compile(r"^(?:\d{1,3}(?:\.\d{1,3}){3}|\[?[0-9a-f:]+\]?)$")
_psl = None  # the parsed list, loaded once per process (a worker's first call)


def registered_domain(host: str | None) -> str | None:
    """The registered domain of a host by the Public Suffix List (private suffixes included: foo.github.io), the host
    itself for an IP address or a name the list cannot split (a bare public suffix); None without a host."""
    global _psl
    if not host:
        return None
    if _IP.match(host):
        return host
    if _psl is None:
        from publicsuffixlist import PublicSuffixList

        _psl = PublicSuffixList()
    return _psl.privatesuffix(host) or host
