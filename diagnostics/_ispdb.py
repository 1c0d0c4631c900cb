"""The Thunderbird ISP database shipped with the package: a provider's documented settings.

The files (diagnostics/knowledge/ispdb/, MPL-2.0, see the README there) are read on first
use, in a worker thread, and indexed by the domains they list. A provider is recognised as
Thunderbird recognises it:

* by the email address's domain (`gmail.com`), exactly;
* by an MX host name: the name itself, then each parent name down to two labels
  (`aspmx.l.google.com` -> `l.google.com` -> `google.com`), for domains hosted by a
  provider under their own name.

`lookup()` parses; on the event loop, `await find(...)` runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Literal

from diagnostics import _autoconfig

PACKAGE_DIR = ("diagnostics.knowledge", "ispdb")


@dataclasses.dataclass(frozen=True, slots=True)
class IspdbMatch:
    """A provider found in the ISP database, and how."""

    config: _autoconfig.ClientConfig
    source: Literal["domain", "mx"]
    matched: str  # the domain or MX-derived name listed in the database
    file: str  # e.g. "googlemail.com.xml"

    def as_evidence(self) -> dict[str, object]:
        return {
            "provider": self.config.display_name,
            "ispdb_file": self.file,
            "matched": self.matched,
            "by": self.source,
            "outgoing": [s.as_evidence() for s in self.config.outgoing],
        }


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    file: str
    config: _autoconfig.ClientConfig
    raw: bytes | None  # kept only when the document has placeholders to fill per address


class _Index:
    def __init__(self) -> None:
        self.by_domain: dict[str, _Entry] = {}
        self.files = 0
        self.domain_entries = 0  # as listed, duplicates across files included


_index: _Index | None = None
_lock = threading.Lock()


def _load() -> _Index:
    global _index
    with _lock:
        if _index is not None:
            return _index
        index = _Index()
        folder = resources.files(PACKAGE_DIR[0]).joinpath(PACKAGE_DIR[1])
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if not item.name.endswith(".xml"):
                continue
            raw = item.read_bytes()
            config = _autoconfig.parse(raw)
            entry = _Entry(item.name, config, raw if b"%EMAIL" in raw else None)
            index.files += 1
            index.domain_entries += len(config.domains)
            for domain in config.domains:
                index.by_domain.setdefault(domain, entry)  # first file (by name) wins
        _index = index
        return index


def domains() -> tuple[str, ...]:
    """Every domain the database lists (unique, sorted)."""
    return tuple(sorted(_load().by_domain))


def stats() -> dict[str, int]:
    index = _load()
    return {
        "files": index.files,
        "domain_entries": index.domain_entries,
        "domains": len(index.by_domain),
    }


def mx_candidates(mx_host: str) -> list[str]:
    """The names an MX host is looked up under: itself, then parents down to two labels."""
    labels = mx_host.strip().lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def lookup(
    domain: str | None, mx_hosts: Sequence[str] = (), *, email: str | None = None
) -> IspdbMatch | None:
    """The provider for `domain` or, failing that, for the first MX host that is listed."""
    index = _load()
    if domain:
        name = domain.strip().lower().rstrip(".")
        entry = index.by_domain.get(name)
        if entry is not None:
            return _match(entry, "domain", name, email)
    for host in mx_hosts:
        for name in mx_candidates(host):
            entry = index.by_domain.get(name)
            if entry is not None:
                return _match(entry, "mx", name, email)
    return None


async def find(
    domain: str | None, mx_hosts: Iterable[str] = (), *, email: str | None = None
) -> IspdbMatch | None:
    """`lookup` for the event loop (the first call parses the whole database)."""
    return await asyncio.to_thread(lookup, domain, tuple(mx_hosts), email=email)


def _match(
    entry: _Entry, source: Literal["domain", "mx"], name: str, email: str | None
) -> IspdbMatch:
    config = entry.config
    if entry.raw is not None and email:
        config = _autoconfig.parse(entry.raw, email=email)
    return IspdbMatch(config=config, source=source, matched=name, file=entry.file)
