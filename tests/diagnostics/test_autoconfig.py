"""The clientConfig parser: what a document names, and what it is refused for."""

from __future__ import annotations

import time

import pytest

from diagnostics._autoconfig import AutoconfigInvalid, parse
from diagnostics._models import Security
from tests.https_server import XML_BOMB as BOMB

GOOD = b"""<?xml version="1.0"?>
<clientConfig version="1.1"><emailProvider id="a.test">
  <domain>a.test</domain><displayName>A Mail</displayName>
  <incomingServer type="imap"><hostname>imap.a.test</hostname><port>993</port>
    <socketType>SSL</socketType></incomingServer>
  <outgoingServer type="smtp"><hostname>smtp.%EMAILDOMAIN%</hostname><port>465</port>
    <socketType>SSL</socketType><username>%EMAILADDRESS%</username>
    <authentication>password-cleartext</authentication></outgoingServer>
  <outgoingServer type="smtp"><hostname>submit.a.test</hostname><port>587</port>
    <socketType>STARTTLS</socketType></outgoingServer>
  <outgoingServer type="smtp"><hostname>bad host&#x202e;.test</hostname><port>25</port>
    <socketType>plain</socketType></outgoingServer>
  <outgoingServer type="smtp"><hostname>p.a.test</hostname><port>99999</port>
    <socketType>plain</socketType></outgoingServer>
</emailProvider></clientConfig>"""

EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE c [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<clientConfig><emailProvider id="x"><displayName>&xxe;</displayName>
</emailProvider></clientConfig>"""


def test_outgoing_servers_are_read_and_placeholders_filled():
    config = parse(GOOD, email="u@A.test")
    assert config.display_name == "A Mail"
    assert config.domains == ("a.test",)
    assert [(s.host, s.port, s.security) for s in config.outgoing] == [
        ("smtp.a.test", 465, Security.SSL),
        ("submit.a.test", 587, Security.STARTTLS),
    ]
    assert config.outgoing[0].username == "%EMAILADDRESS%"
    assert len(config.skipped) == 2  # the hostile host name and the impossible port
    assert "99999" in config.skipped[1]


def test_a_placeholder_without_an_address_is_skipped():
    config = parse(GOOD)
    assert [s.host for s in config.outgoing] == ["submit.a.test"]


@pytest.mark.parametrize("document", [BOMB, EXTERNAL])
def test_entities_are_refused_quickly_not_expanded(document):
    started = time.perf_counter()
    with pytest.raises(AutoconfigInvalid) as caught:
        parse(document)
    assert caught.value.reason == "entities"
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"<clientConfig><emailProvider>", "malformed"),
        (b"", "malformed"),
        (b"<html><body>hello</body></html>", "not_clientconfig"),
        (b"<clientConfig/>", "not_clientconfig"),
    ],
)
def test_other_documents_are_invalid(document, reason):
    with pytest.raises(AutoconfigInvalid) as caught:
        parse(document)
    assert caught.value.reason == reason
