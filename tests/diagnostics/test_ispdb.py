"""The shipped Thunderbird ISP database: recognition by domain and by MX host."""

from __future__ import annotations

from importlib import resources

from diagnostics import _ispdb
from diagnostics._models import Security


def test_the_database_ships_with_its_licence_and_notice():
    folder = resources.files("diagnostics.knowledge").joinpath("ispdb")
    assert "Mozilla Public License Version 2.0" in folder.joinpath("LICENSE").read_text()
    assert "MPL" in folder.joinpath("README.md").read_text()
    assert _ispdb.stats() == {"files": 163, "domain_entries": 963, "domains": 962}


def test_a_provider_is_recognised_by_the_address_domain():
    match = _ispdb.lookup("gmail.com", email="u@gmail.com")
    assert match is not None and (match.source, match.file) == ("domain", "googlemail.com.xml")
    first = match.config.outgoing[0]
    assert (first.host, first.port, first.security) == ("smtp.gmail.com", 465, Security.SSL)


def test_a_provider_is_recognised_by_mx_host_and_its_parents():
    match = _ispdb.lookup("contoso.test", ["mx.elsewhere.test", "ASPMX.L.Google.com."])
    assert match is not None
    assert (match.source, match.matched, match.file) == ("mx", "google.com", "googlemail.com.xml")
    assert _ispdb.mx_candidates("a.b.c.d") == ["a.b.c.d", "b.c.d", "c.d"]


def test_the_domain_wins_over_mx_and_unknown_is_none():
    match = _ispdb.lookup("web.de", ["aspmx.l.google.com"])
    assert match is not None and match.source == "domain" and match.file == "web.de.xml"
    assert _ispdb.lookup("unknown.test", ["mx.unknown.test"]) is None


def test_address_placeholders_are_filled_per_address():
    assert _ispdb.lookup("mail.ee").config.outgoing == ()  # no address: nothing to fill
    filled = _ispdb.lookup("mail.ee", email="someone@mail.ee").config.outgoing
    assert [s.host for s in filled] == ["mail.ee"]
