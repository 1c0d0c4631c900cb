"""App Home shows how to use the bot, with the command forms `/smtpcheck` accepts."""

from __future__ import annotations

import json

from bot.parsing import RunCheck, parse_command
from bot.views.home import home_view


def test_home_shows_the_new_command_forms_and_they_parse() -> None:
    dumped = json.dumps(home_view([]).to_dict())
    assert "in any order" in dumped
    example = "/smtpcheck me@example.com smtp.example.com 465 ssl mac"
    assert example in dumped
    assert isinstance(parse_command(example.removeprefix("/smtpcheck ")), RunCheck)
    assert "/smtpcheck explain" in dumped
