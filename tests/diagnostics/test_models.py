"""Input models: what a typed port or target becomes, and what a bad one is told."""

from __future__ import annotations

import pytest

from diagnostics._models import parse_port, split_target


@pytest.mark.parametrize("text", ["587", " 587 ", "25", 465])
def test_a_port_in_ascii_digits_is_read(text: str | int) -> None:
    assert parse_port(text) == int(str(text).strip())


@pytest.mark.parametrize("text", ["１", "1_0", "+25", "-1", "5 87", "0x24b", "²"])
def test_a_port_int_would_take_but_no_one_means_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a number"):
        parse_port(text)


@pytest.mark.parametrize("text", ["5\n87", "abc\r\ndef", "1\x1b[2J", "2\u202e5"])
def test_a_bad_port_is_echoed_on_one_visible_line(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_port(text)
    message = str(info.value)
    assert message.isprintable(), message
    assert "\\x" in message or "U+" in message


def test_a_bad_target_is_echoed_on_one_visible_line() -> None:
    with pytest.raises(ValueError) as info:
        split_target("[::1]x\n\x1b[2J")
    assert str(info.value).isprintable()
